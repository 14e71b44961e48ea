"""The durable message journal (SQLite, WAL): see `store.Journal`."""

from engine.journal.model import (
    Attempt,
    AttemptRecord,
    Incoming,
    JournalError,
    KeyPolicy,
    LeaseLost,
    Message,
    Receipt,
    State,
    Summary,
    UnknownMessage,
)
from engine.journal.redact import redact
from engine.journal.store import Journal

__all__ = [
    "Attempt",
    "AttemptRecord",
    "Incoming",
    "Journal",
    "JournalError",
    "KeyPolicy",
    "LeaseLost",
    "Message",
    "Receipt",
    "State",
    "Summary",
    "UnknownMessage",
    "redact",
]
