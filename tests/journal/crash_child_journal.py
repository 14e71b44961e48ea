"""Child process for the SIGKILL test: journals records as fast as it can, printing each
acknowledgement only after `receive` returned (the moment a source would be acknowledged).

Lines: `ack <key> <id> <dup>` after a receive, `sent <id>` after mark_sent. Starts at key 0 every
run, so a restarted child re-sends everything acknowledged before the kill (must be duplicates).
"""

from __future__ import annotations

import asyncio
import sys

from engine.journal import Attempt, Journal


def payload(i: int) -> dict[str, object]:
    return {"reportNo": f"R{i}", "idCardNo": "110105199003071234", "items": list(range(i % 7))}


async def main(path: str) -> None:
    journal = await Journal.open(path, lease_s=3600)
    out = sys.stdout
    i = 0
    while True:
        keys = range(i, i + 16)
        receipts = await asyncio.gather(*(journal.receive("t/R", "T", payload(k), key=f"K{k}") for k in keys))
        for k, r in zip(keys, receipts, strict=True):
            out.write(f"ack K{k} {r.id} {int(r.duplicate)}\n")
        out.flush()
        i += 16
        for m in await journal.claim_due("T", limit=8):
            if m.id % 2:
                await journal.mark_sent(m.id, attempt=Attempt("ok", "POST /r", 200, body="ok"), lease=m.lease)
                out.write(f"sent {m.id}\n")
        out.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
