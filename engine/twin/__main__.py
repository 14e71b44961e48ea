"""`python -m engine.twin PLATFORM [--port N] ...`, the same as `specbridge twin`.

(`python -m engine.cli twin` does not work until engine/cli.py's `__main__` block calls
`engine.cli.main` by import: run as `__main__`, its COMMANDS is not the one sub-commands register in.)
"""

import sys

from engine.cli import main

sys.exit(main(["twin", *sys.argv[1:]]))
