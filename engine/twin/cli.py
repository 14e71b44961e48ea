"""`specbridge twin PLATFORM`: serve a platform twin on loopback until interrupted.

The first stdout line is `listening on http://HOST:PORT` (flushed), so a test or the demo that
starts the twin as a subprocess with `--port 0` reads the ephemeral port from it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from engine.crypto.secrets import resolve_secret


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("platform", help="platform id (city_lab_mr, xinjiang_mr, pe_system, wedoctor_supervision, jilin_imaging)")
    p.add_argument("--port", type=int, default=0, help="TCP port (0: an ephemeral port, printed on the first line)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--specs", default="specs", help="specs directory (default: specs)")
    p.add_argument("--fail-every", type=int, default=0, metavar="N", help="answer every Nth business request with a retryable failure")
    p.add_argument("--state", metavar="FILE", help="keep records and counters in this SQLite file (default: memory)")
    p.add_argument("--credential", action="append", default=[], metavar="NAME=VALUE",
                   help="a valid credential value (default: the token interface's example)")
    p.add_argument("--secret", action="append", default=[], metavar="NAME=REF",
                   help="a crypto secret by reference (env:VAR or file:PATH); missing keys are generated")
    p.add_argument("--no-crypto", action="store_true", help="serve plaintext even if the platform has a crypto profile")
    p.add_argument("--secrets-out", metavar="FILE", help="write what a client needs (public keys, shared secrets) as JSON")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"specbridge: --{what} takes NAME=VALUE, got {item!r}")
        out[name] = value
    return out


async def _serve(args: argparse.Namespace) -> int:
    from engine.twin.core import TwinOptions
    from engine.twin.serve import serve_twin

    options = TwinOptions(
        fail_every=args.fail_every,
        credentials=_pairs(args.credential, "credential") or None,
        state=args.state,
        secrets={k: resolve_secret(v) for k, v in _pairs(args.secret, "secret").items()},
        use_crypto=not args.no_crypto,
    )
    running = await serve_twin(Path(args.specs), args.platform, host=args.host, port=args.port, options=options)
    if args.secrets_out:
        Path(args.secrets_out).write_text(json.dumps(running.twin.client_secrets_text(), ensure_ascii=False, indent=2))
    print(f"listening on {running.url}", flush=True)
    for finding in running.twin.findings:
        print(f"specbridge: warning: {finding}", file=sys.stderr)
    soap = running.soap_url()
    print(f"  {args.platform}: {len(running.twin.ifaces)} interfaces" + (f"; SOAP {soap}?wsdl" if soap else "")
          + f"; stats {running.url}/__twin__/stats", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"specbridge: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
