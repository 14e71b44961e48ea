"""`specbridge admin-token`: make the admin API's bearer token as a private file the bridge file references."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from engine.cli import EXIT_OK, EXIT_USAGE, command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="var/admin.token", help="where to write it (default: var/admin.token)")
    p.add_argument("--force", action="store_true", help="replace an existing token (signs every dashboard out)")


@command("admin-token", "make a random admin API token in a file only you can read, for the bridge file's admin.token")(_args)
def cmd_admin_token(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists() and not args.force:
        print(f"specbridge: {path} exists; --force replaces it", file=sys.stderr)
        return EXIT_USAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    print(f"wrote {path} (mode 600). In the bridge file:\n  admin: {{port: 9464, token: \"file:{path}\"}}")
    print("The dashboard asks for it; or open http://127.0.0.1:9464/#token=... (the fragment never reaches the server).")
    return EXIT_OK
