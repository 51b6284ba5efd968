"""Connections to the database: the engine (SQLite's settings, its checkpoints on a thread of their own),
and the transactions that write or only read, joined to the unit of the update being handled."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from sqlalchemy import event, text
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, create_engine

log = logging.getLogger("kefu.store")


READ_ONLY = "kefu_read_only"  # an execution option: this connection's transactions only read


def connect(database_url: str, synchronous: str = "full", checkpoints: bool = False) -> DbEngine:
    """Opens the database: a new one is made at the newest schema; one at an older schema is refused
    (bot.storage.schema.SchemaError: run `kefu db upgrade`). synchronous (SQLite): full, each commit waits for the
    disk; normal, it reaches the operating system only, and the disk at checkpoints (Settings.sqlite_synchronous).
    checkpoints (an SQLite file): the write-ahead log is copied into the database by a thread of its own
    (Checkpointer), not by the turn whose commit filled it."""
    # Errors never carry the statement's parameters: they are customers' messages, phones and waybills.
    engine = create_engine(database_url, hide_parameters=True)
    checkpointer = None
    if engine.dialect.name == "sqlite" and checkpoints and engine.url.database not in (None, "", ":memory:"):
        checkpointer = Checkpointer(engine.url.database)
        event.listen(engine, "commit", lambda _conn: checkpointer.committed())
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record):  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None
            # Write-ahead log: readers see the last commit and never wait for a writer, nor block one.
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, FULL syncs the log at every commit; NORMAL only at checkpoints (durable when the
            # process dies, not when the machine does: then the last commits may be undone, consistently).
            dbapi_conn.execute("PRAGMA synchronous=NORMAL" if synchronous == "normal" else "PRAGMA synchronous=FULL")
            if checkpointer is not None:
                # A commit copies the log into the database itself only when the checkpointer falls far behind.
                dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={Checkpointer.BACKSTOP}")

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # A transaction that writes takes the write lock at BEGIN, so two processes serialise whole
            # turns instead of failing midway; one that only reads (Store.reading) takes no lock at all.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    from bot.storage import schema

    # Looked at without a write lock first: a reader opens a busy database at once.
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        ready = schema.state(conn) == "current"
    if not ready:
        with engine.begin() as conn:
            schema.check(conn)  # makes a new database; refuses an older or newer one (SchemaError)
    return engine


def ping(db: DbEngine) -> None:
    """Asks the database the simplest question: raises (SQLAlchemyError) when it cannot answer."""
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file on a thread of its own, a moment after commits.

    SQLite's own checkpoint runs inside the commit that makes the log reach 1000 pages (every 80 turns or so),
    and that turn waits for it: the pages written to the database and two disk flushes (the log's and the
    database's), some 5-40 ms on a busy disk, the slowest turns of all. Here a passive checkpoint (it waits
    for no reader or writer, and none waits for it) runs at most every `every` seconds while there are new
    commits; the commits' own automatic checkpoint stays as a backstop at BACKSTOP pages. What is durable is
    unchanged: a checkpoint only copies committed pages, and flushes them, wherever it runs. The thread
    ends when its engine is gone."""

    BACKSTOP = 4000  # pages (16 MB of log)

    def __init__(self, path: str, every: float = 0.25):
        self.path, self.every = path, every
        self.pending = 0  # commits since the last checkpoint (a plain count: a lost increment only delays one)
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        self.pending += 1
        if self._thread is None:
            self._thread = threading.Thread(target=_checkpoints, args=(weakref.ref(self), self.path, self.every),
                                            name="kefu-checkpoint", daemon=True)
            self._thread.start()


def _checkpoints(ref: "weakref.ref[Checkpointer]", path: str, every: float) -> None:
    import sqlite3

    connection = None
    try:
        while True:
            time.sleep(every)
            checkpointer = ref()
            if checkpointer is None:
                return
            pending, checkpointer.pending = checkpointer.pending, 0
            del checkpointer  # held only while looked at: the thread must not keep it alive
            if not pending:
                continue
            try:
                if connection is None:
                    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # a file moved or locked away: the commits' backstop checkpoints instead
                log.debug("checkpoint of %s skipped: %s", path, exc)
                if connection is not None:
                    connection.close()
                    connection = None
    finally:
        if connection is not None:
            connection.close()


# The transaction of the inbound being handled (TelegramBot handles each update in one): the store, casework
# and the inbox join it instead of opening their own, each writer in a savepoint of it, so that everything
# one update does is committed together or not at all.
UNIT: ContextVar[Session | None] = ContextVar("kefu_unit", default=None)


def _unit_of(db: DbEngine) -> Session | None:
    unit = UNIT.get()
    return unit if unit is not None and unit.get_bind() is db else None


@contextmanager
def writing(db: DbEngine, savepoint: bool = False) -> Iterator[Session]:
    """A transaction that writes (on SQLite it holds the write lock from BEGIN), or, inside a unit, the
    unit's own: a failure there fails the update, which is rolled back whole. savepoint: a writer whose
    database error its caller catches and goes on from (a turn retried after a clash of case numbers)
    gets a savepoint of the unit, so that only its own work is undone (two statements more)."""
    unit = _unit_of(db)
    if unit is not None:
        if not savepoint:
            yield unit
            return
        with unit.begin_nested():
            yield unit
        return
    with Session(db, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def reading(db: DbEngine) -> Iterator[Session]:
    """A session that only reads: inside a unit, the unit's (it sees what the unit wrote); otherwise one that
    on SQLite neither waits for a writer nor holds one up."""
    unit = _unit_of(db)
    if unit is not None:
        yield unit
        return
    with Session(db.execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


def locked(session: Session) -> bool | None:
    """session.get's with_for_update: a row lock on PostgreSQL; on SQLite, whose BEGIN IMMEDIATE already
    holds the whole database, None, not False: any value but None makes session.get skip its identity
    map and query again for a row the session already has (two extra SELECTs of an update's inbox row)."""
    return True if session.bind.dialect.name != "sqlite" else None

