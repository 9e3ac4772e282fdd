"""SQLite storage (WAL): audit log, incidents, sequences and plugin records.

Every write commits at once, so killing the hub loses nothing it had acknowledged: an open
parking session or an unacknowledged incident is on disk before the hub acts on it. The
store is synchronous on purpose: a local SQLite commit in WAL mode takes tens of
microseconds, far less than a thread hop, and keeps the order of writes the order of events.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .exceptions import EstatehubError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
"""


class StoreError(EstatehubError):
    """The store could not be opened or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who did what to which subject, and when."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


class Store:
    """The hub's SQLite database; ``":memory:"`` for replays and tests."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else ":memory:"
        self._db: sqlite3.Connection | None = None
        self._lock_handle: IO[str] | None = None

    def open(self) -> None:
        """Open (creating if needed) the database and its tables."""
        if self._db is not None:
            return
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._lock()
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can cost the
            # last commits, which is the trade every embedded hub makes.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(found[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer estatehub (schema {found[0]}, "
                    f"this one knows {SCHEMA_VERSION})"
                )
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the store {self.path}: {err}") from err
        self._db = db

    def _lock(self) -> None:
        # One hub per store: two hubs on one file would both open barriers and escalate
        # the same incidents. The lock goes with the process, so kill -9 frees it.
        lock_path = Path(f"{self.path}.lock")
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(f"another estatehub is already using the store {self.path}") from None
        self._lock_handle = handle

    def close(self) -> None:
        """Close the database and release its lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection; raises :class:`StoreError` before :meth:`open`."""
        if self._db is None:
            raise StoreError(f"the store {self.path} is not open")
        return self._db

    def hub_id(self) -> str:
        """This store's hub id: made once (random), then kept."""
        row = self.db.execute("SELECT value FROM meta WHERE key='hub_id'").fetchone()
        if row is not None:
            return str(row[0])
        value = uuid.uuid4().hex
        self.db.execute("INSERT INTO meta (key, value) VALUES ('hub_id', ?)", (value,))
        return value

    # -- audit -------------------------------------------------------------------------

    def audit(
        self, at: datetime, actor: str, action: str, subject: str, detail: Mapping[str, Any]
    ) -> None:
        """Append one audit entry."""
        self.db.execute(
            "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (at.isoformat(), actor, action, subject, _dumps(detail)),
        )

    def audit_entries(self, subject: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries, oldest first, optionally for one subject."""
        if subject is None:
            rows = self.db.execute(
                "SELECT seq, at, actor, action, subject, detail FROM audit ORDER BY seq LIMIT ?",
                (limit,),
            )
        else:
            rows = self.db.execute(
                "SELECT seq, at, actor, action, subject, detail FROM audit WHERE subject=? "
                "ORDER BY seq LIMIT ?",
                (subject, limit),
            )
        return [
            AuditEntry(seq, datetime.fromisoformat(at), actor, action, subj, json.loads(detail))
            for seq, at, actor, action, subj, detail in rows
        ]

    # -- incidents ---------------------------------------------------------------------

    def save_incident(self, incident_id: str, state: str, raised_at: datetime, data: Any) -> None:
        """Insert or replace an incident's row."""
        self.db.execute(
            "INSERT INTO incidents (id, state, raised_at, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
            (incident_id, state, raised_at.isoformat(), _dumps(data)),
        )

    def load_incidents(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Incident rows as dicts, in order raised; only the given states when given."""
        if states is None:
            rows = self.db.execute("SELECT data FROM incidents ORDER BY raised_at, id")
        else:
            marks = ",".join("?" * len(states))
            rows = self.db.execute(
                f"SELECT data FROM incidents WHERE state IN ({marks}) ORDER BY raised_at, id",
                states,
            )
        return [json.loads(row[0]) for row in rows]

    # -- sequences ---------------------------------------------------------------------

    def next_sequence(self, name: str) -> int:
        """The next value (1, 2, …) of a named counter; survives restarts."""
        row = self.db.execute(
            "INSERT INTO sequences (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value=value+1 RETURNING value",
            (name,),
        ).fetchone()
        return int(row[0])

    # -- plugin records ----------------------------------------------------------------

    def put(self, collection: str, key: str, data: Mapping[str, Any], at: datetime) -> None:
        """Insert or replace a JSON record (plugins keep their durable state here)."""
        self.db.execute(
            "INSERT INTO records (collection, key, updated_at, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(collection, key) DO UPDATE SET updated_at=excluded.updated_at, "
            "data=excluded.data",
            (collection, key, _utc(at), _dumps(data)),
        )

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        """One record, or None."""
        row = self.db.execute(
            "SELECT data FROM records WHERE collection=? AND key=?", (collection, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, collection: str, key: str) -> bool:
        """Remove a record; True if it existed."""
        cur = self.db.execute("DELETE FROM records WHERE collection=? AND key=?", (collection, key))
        return cur.rowcount > 0

    def records(self, collection: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, record) of a collection, by key."""
        rows = self.db.execute(
            "SELECT key, data FROM records WHERE collection=? ORDER BY key", (collection,)
        ).fetchall()
        for key, data in rows:
            yield key, json.loads(data)

    def purge(self, collection: str, older_than: datetime) -> int:
        """Delete a collection's records last written before ``older_than`` (retention)."""
        cur = self.db.execute(
            "DELETE FROM records WHERE collection=? AND updated_at < ?",
            (collection, _utc(older_than)),
        )
        return cur.rowcount


def _utc(at: datetime) -> str:
    # Stored in UTC so that comparing the text compares the times, whatever the offset.
    return at.astimezone(UTC).isoformat()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} {value!r}")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=_default, sort_keys=True)
