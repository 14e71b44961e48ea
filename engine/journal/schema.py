"""Journal DDL as numbered migrations, applied in order at open, each in its own transaction.

Index choices (search must stay O(page) at 1M rows, see bench/journal.py):
- every search pages by id (keyset), so each filter has an index ending in id that SQLite can walk
  in id order and stop after `limit` rows: (state, id), (interface, id), (interface, state, id);
- time bounds become id bounds through (created_at): created_at is kept monotonic with id;
- the natural-key index leads with the key, so a key-only search and the per-(target, interface)
  idempotency lookup share it;
- payloads live in their own table keyed by message id: a lab report or a base64 PDF would otherwise
  spread the metadata rows over many pages (and overflow chains) and every search would read them;
- the due index is partial (only pending rows), so claiming stays cheap however many rows are SENT.
"""

from __future__ import annotations

import sqlite3
import time

from engine.journal.model import JournalError

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "messages, attempts, kv",
        """
        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY,
            interface       TEXT NOT NULL,
            target          TEXT NOT NULL,
            route           TEXT,
            state           TEXT NOT NULL,
            idem_key        TEXT,
            version         INTEGER NOT NULL DEFAULT 1,
            payload_hash    TEXT NOT NULL,
            created_at      REAL NOT NULL,
            updated_at      REAL NOT NULL,
            cycle_at        REAL NOT NULL,
            next_attempt_at REAL,
            lease           TEXT,
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT,
            superseded_by   INTEGER
        );
        CREATE UNIQUE INDEX ux_messages_key ON messages (idem_key, target, interface, version)
            WHERE idem_key IS NOT NULL;
        CREATE INDEX ix_messages_due ON messages (target, next_attempt_at, id)
            WHERE next_attempt_at IS NOT NULL;
        CREATE INDEX ix_messages_superseded ON messages (target, next_attempt_at)
            WHERE superseded_by IS NOT NULL AND next_attempt_at IS NOT NULL;
        CREATE INDEX ix_messages_state ON messages (state, id);
        CREATE INDEX ix_messages_interface ON messages (interface, id);
        CREATE INDEX ix_messages_interface_state ON messages (interface, state, id);
        CREATE INDEX ix_messages_created ON messages (created_at);

        CREATE TABLE payloads (
            id         INTEGER PRIMARY KEY,
            source     BLOB,
            translated BLOB
        );

        CREATE TABLE attempts (
            id          INTEGER PRIMARY KEY,
            message_id  INTEGER NOT NULL,
            n           INTEGER NOT NULL,
            started_at  REAL NOT NULL,
            duration_ms REAL,
            request     TEXT NOT NULL,
            status      INTEGER,
            code        TEXT,
            body        TEXT,
            outcome     TEXT NOT NULL,
            error       TEXT
        );
        CREATE INDEX ix_attempts_message ON attempts (message_id, n);

        CREATE TABLE kv (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        "messages.in_doubt",
        # A delivery may have reached the platform with no outcome recorded (its holder died mid-send):
        # set when such a message is claimed again, kept while a reconciliation cannot settle it, cleared
        # by an outcome. A column on the row claim_due already writes: no extra statement, no index.
        """
        ALTER TABLE messages ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
        """,
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; refuse one written by a newer engine. Returns the version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise JournalError(f"journal schema v{current} is newer than this engine's v{SCHEMA_VERSION}: upgrade specbridge")
    for version, name, ddl in MIGRATIONS:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current
