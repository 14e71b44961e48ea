"""Where a token manager keeps what must survive a restart (day's refresh count, alarm, token).

`engine.journal.Journal` satisfies `KV` itself (its kv table), which is the default in a bridge:
the state then lives and is backed up with the journal. FileKV is for tools without a journal.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Protocol


class KV(Protocol):
    async def kv_get(self, key: str) -> str | None: ...

    async def kv_set(self, key: str, value: str) -> None: ...


class MemoryKV:
    """Process-local (tests, or when losing the count on restart is acceptable)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def kv_get(self, key: str) -> str | None:
        return self.data.get(key)

    async def kv_set(self, key: str, value: str) -> None:
        self.data[key] = value


class FileKV:
    """One JSON file, replaced atomically (write, fsync, rename) so a crash leaves old or new."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text("utf-8")))
        except FileNotFoundError:
            return {}

    def _write(self, key: str, value: str) -> None:
        data = self._read()
        data[key] = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    async def kv_get(self, key: str) -> str | None:
        return (await asyncio.to_thread(self._read)).get(key)

    async def kv_set(self, key: str, value: str) -> None:
        await asyncio.to_thread(self._write, key, value)
