"""Storage: conversations, cases, every message and event, written one turn per transaction."""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterator

from sqlalchemy import (JSON, BigInteger, Column, DateTime, Text, UniqueConstraint, bindparam, event, exists, func,
                        insert, update)
from sqlalchemy.orm import aliased
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from dialogs.conversation import CaseView, Conversation, Event, Inbound, Memory, Turn, with_detail

log = logging.getLogger("kefu.store")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _when() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True)
    user_key: str
    category: str | None = None
    state: str
    facts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    case_number: str | None = None
    greeted: bool = False
    salutation: str | None = None
    offered: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    offered_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    later: str | None = None
    memory: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=True))  # dialogs.conversation.Memory
    created_at: datetime = _when()
    updated_at: datetime = _when()

    def to_conversation(self) -> Conversation:
        return Conversation(self.category, self.state, dict(self.facts), self.case_number, self.greeted,
                            self.salutation, list(self.offered), self.offered_text, self.later,
                            Memory.from_json(self.memory))

    def take(self, conv: Conversation) -> None:
        """Copies the conversation's new state onto the row."""
        self.category, self.state, self.facts, self.case_number = conv.category, conv.state, dict(conv.facts), conv.case_number
        self.greeted, self.salutation, self.offered = conv.greeted, conv.salutation, list(conv.offered)
        self.offered_text, self.later = conv.offered_text, conv.later
        self.memory = conv.memory.as_json()


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True)
    content_version: str
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    category: str = Field(index=True)
    status: str = Field(default="open", index=True)  # open, closed
    waybill: str | None = Field(default=None, index=True)
    contact: str | None = None
    facts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    step: int = 0  # index into the category's handling ladder
    step_role: str
    step_deadline: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    opened_at: datetime = _when()
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    assigned_to: int | None = Field(default=None, sa_column=Column(BigInteger))  # the staff member's Telegram id
    paused_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))  # waiting on the customer
    reminded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    top_alerted: bool = False  # the last step's deadline passed and the supervisors were told
    rating: int | None = None  # 1-5, from the customer after the case closed
    rating_reason: str | None = Field(default=None, sa_column=Column(Text))


class StaffRow(SQLModel, table=True):
    __tablename__ = "staff"

    telegram_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    role: str  # staff, supervisor, admin
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    handles: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AttachmentRow(SQLModel, table=True):
    """A photo or document a customer sent (evidence), kept by its channel's file id."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    case_number: str | None = Field(default=None, index=True)
    kind: str  # photo, document
    file_id: str
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = _when()


class InboxRow(SQLModel, table=True):
    """A raw Telegram update, written before Telegram is told it arrived (so a crash loses none);
    pending until every handler has run, replayed at the next start if the process died first."""

    __tablename__ = "telegram_inbox"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    user_key: str | None = Field(default=None, index=True)  # the sender: workers take one of theirs at a time
    # pending: to handle; done; retry: failed, tried again at retry_at; dead: failed every attempt
    status: str = Field(default="pending", index=True)
    received_at: datetime = _when()
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0  # failed attempts so far
    error: str | None = Field(default=None, sa_column=Column(Text))  # the last failure, one line
    retry_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class AuditRow(SQLModel, table=True):
    """Who did what to whose data: exports, erasures, staff removals, retention runs, restores."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    action: str  # customer_export, customer_erase, retention_erase, staff_remove, restore
    subject: str | None = None  # the customer's user key, or the staff member's id
    actor: str  # the operating-system user who ran the command, or "kefu" for automatic runs
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # counts, never content
    at: datetime = _when()


class MetaRow(SQLModel, table=True):
    """Facts about the database itself (the schema's version is Alembic's: bot/migrate.py)."""

    __tablename__ = "kefu_meta"

    key: str = Field(primary_key=True)
    value: str




class TrainingRow(SQLModel, table=True):
    """One training session (kefu train): who practised which scenario, every line said, and the score
    with its checks after each reply."""

    __tablename__ = "training_sessions"

    id: int | None = Field(default=None, primary_key=True)
    trainee: str = Field(index=True)
    category: str = Field(index=True)
    scenario: int
    training_version: str  # the training content that scored it
    score: int  # the session's final score, 0-100
    finished: bool  # every turn answered (False: the trainee left early)
    forbidden: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # moves committed
    turns: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{customer, reply, score, checks}]
    started_at: datetime = _when()
    finished_at: datetime = _when()


class CaseCounterRow(SQLModel, table=True):
    """The last case number given out on a day (local date), so a new case takes the next one under a
    row lock instead of counting the day's cases (which two workers would count alike)."""

    __tablename__ = "case_counters"

    day: str = Field(primary_key=True)  # YYYYMMDD
    last: int = 0


class StaffModeRow(SQLModel, table=True):
    """What a staff member is doing in their private chat with kefu: a guided complaint (/assist) or a
    training session (/train). Their messages there go to it until it ends; one at a time."""

    __tablename__ = "staff_modes"

    telegram_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    mode: str  # assist, train
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # the mode's own state
    started_at: datetime = _when()


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    direction: str  # in, out
    text: str | None = Field(default=None, sa_column=Column(Text))  # exactly as sent or shown
    choice: str | None = None  # the value of a pressed option
    options: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    staff_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # a staff member's reply, not the bot's
    category: str | None = None
    state: str  # the conversation's state when the message was received or sent
    at: datetime = _when()


class EventRow(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    case_number: str | None = Field(default=None, index=True)
    kind: str
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = _when()


READ_ONLY = "kefu_read_only"  # an execution option: this connection's transactions only read


def connect(database_url: str, synchronous: str = "full", checkpoints: bool = False) -> DbEngine:
    """Opens the database: a new one is made at the newest schema; one at an older schema is refused
    (bot.migrate.SchemaError: run `kefu db upgrade`). synchronous (SQLite): full, each commit waits for the
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

    from bot import migrate

    # Looked at without a write lock first: a reader opens a busy database at once.
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        ready = migrate.state(conn) == "current"
    if not ready:
        # The other tables' modules only when the schema is made (their own users import them):
        # a start with a current database answers sooner without them.
        all_tables()
        with engine.begin() as conn:
            migrate.check(conn)  # makes a new database; refuses an older or newer one (SchemaError)
    return engine


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


def all_tables() -> None:
    """Imports every module that defines tables, so the metadata (and the migrations) see them all."""
    import bot.drafts  # noqa: F401  (draft_reviews)
    import bot.outbox  # noqa: F401  (telegram_outbox)
    import bot.supervision  # noqa: F401  (web_users, case_marks: the supervisor pages)


# Columns added to existing tables before the migrations existed: a database from those builds gets
# them when `kefu db upgrade` completes it to the baseline (bot/migrate.py). Later changes are revisions.
_ADDED_COLUMNS = {"conversations": {"memory": "JSON"},
                  "telegram_inbox": {"attempts": "INTEGER NOT NULL DEFAULT 0", "error": "TEXT",
                                     "retry_at": "TIMESTAMP WITH TIME ZONE"}}


def add_missing_columns(conn) -> None:
    from sqlalchemy import inspect

    inspector = inspect(conn)
    for table, columns in _ADDED_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for name, kind in columns.items():
            if name not in present:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


_UNSTORABLE = re.compile("[\ud800-\udfff]")
_UNSTORABLE_PG = re.compile("[\ud800-\udfff\x00]")


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


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; all of kefu's are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


class Store:
    def __init__(self, db: DbEngine, content_version: str, zone: tzinfo = timezone.utc):
        self.db = db
        self.content_version = content_version
        self.zone = zone  # case numbers carry the local date

    def storable(self, inbound: Inbound) -> Inbound:
        """The message as the database can keep it: exactly as sent, but for what no text column holds
        (a lone surrogate, which is no UTF-8; NUL on PostgreSQL), kept as U+FFFD rather than failing the turn."""
        unstorable = _UNSTORABLE_PG if self.db.dialect.name == "postgresql" else _UNSTORABLE

        def clean(text: str | None) -> str | None:
            return None if text is None else unstorable.sub("\ufffd", text)

        return replace(inbound, text=clean(inbound.text), as_sent=clean(inbound.as_sent), choice=clean(inbound.choice))

    @contextmanager
    def turn(self, channel: str, user_key: str, savepoint: bool = False) -> Iterator["TurnTx"]:
        """One customer turn in one transaction (or in the unit: see writing()): committed whole, or not at all."""
        with writing(self.db, savepoint) as session:
            yield TurnTx(self, session, channel, user_key, utcnow())

    def session(self) -> Session:
        """A session of its own, outside any unit (tools and tests that manage their own transaction)."""
        return Session(self.db, expire_on_commit=False)

    def writing(self) -> Any:
        """A transaction that writes (see writing())."""
        return writing(self.db)

    def reading(self) -> Any:
        """A session that only reads (see reading())."""
        return reading(self.db)

    def staff_mode(self, telegram_id: int) -> str | None:
        """What the staff member is doing in their private chat with kefu (assist, train), if anything."""
        with self.reading() as session:
            # Asked at every private message: one prebuilt statement rather than session.get's query (what the
            # unit holds or has pending is looked at first, as get would).
            row = session.identity_map.get(session.identity_key(StaffModeRow, telegram_id))
            if row is not None:
                return row.mode
            if session.new or session.dirty or session.deleted:
                session.flush()
            return session.connection().execute(_STAFF_MODE, {"id": telegram_id}).scalar()


_STAFF_MODE = select(StaffModeRow.__table__.c.mode).where(StaffModeRow.__table__.c.telegram_id == bindparam("id"))
_INBOX = InboxRow.__table__
_INBOX_RECEIVED = select(_INBOX.c.received_at).where(_INBOX.c.update_id == bindparam("id"))
_INBOX_NEW = insert(_INBOX)
_INBOX_TAKEN_OVER = update(_INBOX).where(_INBOX.c.update_id == bindparam("id"))  # SET: the parameters' columns


class Inbox:
    """The durable inbox of raw Telegram updates (InboxRow)."""

    # Telegram keeps an unconfirmed update for 24 hours, so only a repeat within a day is a redelivery;
    # after a quiet week it restarts update ids at random, and an older row with the same id is reused.
    REDELIVERY = timedelta(days=1)

    def __init__(self, db: DbEngine):
        self.db = db

    def add(self, update_id: int, data: dict, user_key: str | None = None) -> bool:
        """Keeps a raw update; False if it is a redelivery of one already kept (to be dropped)."""
        now = utcnow()
        # Plain statements, not an ORM row: this runs for every update before it is handled, and building,
        # flushing and forgetting an InboxRow cost more than the insert itself.
        with writing(self.db) as session:
            connection = session.connection()
            received = connection.execute(_INBOX_RECEIVED, {"id": update_id}).scalar()
            if received is not None and now - aware(received) < self.REDELIVERY:
                return False
            kept = dict(data=data, status="pending", received_at=now, done_at=None, user_key=user_key)
            if received is None:
                connection.execute(_INBOX_NEW, dict(update_id=update_id, attempts=0, **kept))
            else:  # an id Telegram reused after a quiet week: the old row is taken over (its attempts kept)
                connection.execute(_INBOX_TAKEN_OVER, dict(id=update_id, **kept))
        return True

    def claim(self, session: Session) -> InboxRow | None:
        """Takes the oldest update waiting to be handled, in the caller's transaction (a unit): on PostgreSQL
        a row another worker has taken is skipped, and a customer's update waits while an earlier one of
        theirs is waiting or being handled, so each customer is served in order, different ones in parallel."""
        from bot.outbox import OutboxRow

        earlier = aliased(InboxRow)
        query = (select(InboxRow).where(InboxRow.status == "pending",
                                        ~exists().where(earlier.user_key == InboxRow.user_key,
                                                        earlier.status == "pending",
                                                        earlier.update_id < InboxRow.update_id),
                                        # and the answers to their last one are sent (held ones aside): in order
                                        ~exists().where(OutboxRow.user_key == InboxRow.user_key,
                                                        OutboxRow.status == "pending", OutboxRow.held_for.is_(None)))
                 .order_by(InboxRow.update_id).limit(1))
        if session.bind.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already lets one worker in at a time
            query = query.with_for_update(skip_locked=True, of=InboxRow)
        return session.exec(query).first()

    def finish(self, update_id: int) -> None:
        """Marks a kept update handled (a failed one keeps its failure: it is retried or dead)."""
        with writing(self.db) as session:
            row = session.get(InboxRow, update_id)
            if row is not None and row.status == "pending":
                row.status, row.done_at = "done", utcnow()
                session.add(row)

    def fail(self, update_id: int, error: str, attempts: int, first_wait: timedelta) -> str:
        """Records a failed attempt: the update is tried again later (each wait 6x the one before), or,
        after `attempts` failures, dead-lettered. Returns the new status, retry or dead."""
        with writing(self.db) as session:
            # Locked and read afresh: the unit's rollback dropped its lock, and another worker may have handled it.
            row = session.get(InboxRow, update_id, with_for_update=self.db.dialect.name != "sqlite",
                              populate_existing=True)
            if row is None:
                return "dead"
            if row.status == "done":
                return "done"
            row.attempts += 1
            row.error = " ".join(error.split())[:500]
            if row.attempts >= attempts:
                row.status, row.retry_at, row.done_at = "dead", None, utcnow()
            else:
                row.status, row.retry_at = "retry", utcnow() + first_wait * 6 ** (row.attempts - 1)
            session.add(row)
            return row.status

    def due(self) -> list[dict]:
        """Takes the failed updates whose retry time has come (pending again), oldest first."""
        with writing(self.db) as session:
            rows = session.exec(select(InboxRow).where(InboxRow.status == "retry", InboxRow.retry_at <= utcnow())
                                .order_by(InboxRow.update_id)).all()
            for row in rows:
                row.status = "pending"
                session.add(row)
            return [dict(row.data) for row in rows]

    def retry(self, update_id: int) -> bool:
        """Sends a failed or dead update back to be tried once more, now; False if there is none."""
        with writing(self.db) as session:
            row = session.get(InboxRow, update_id)
            if row is None or row.status not in ("retry", "dead"):
                return False
            row.status, row.retry_at, row.done_at = "retry", utcnow(), None
            row.attempts = max(row.attempts - 1, 0)  # one more try before it is dead again
            session.add(row)
            return True

    def failures(self) -> list[InboxRow]:
        """The updates that failed: waiting for a retry or dead, oldest first."""
        with reading(self.db) as session:
            return list(session.exec(select(InboxRow).where(InboxRow.status.in_(("retry", "dead")))  # type: ignore[attr-defined]
                                     .order_by(InboxRow.update_id)))

    def pending(self) -> list[dict]:
        """The updates kept but never handled (the process stopped first), oldest first."""
        with reading(self.db) as session:
            rows = session.exec(select(InboxRow).where(InboxRow.status == "pending").order_by(InboxRow.update_id))
            return [dict(row.data) for row in rows]

    def prune(self, older_than: timedelta = timedelta(days=7)) -> None:
        """Forgets handled updates after a while (the transcript keeps the messages); failures stay."""
        with writing(self.db) as session:
            for row in session.exec(select(InboxRow).where(InboxRow.status == "done",
                                                           InboxRow.received_at < utcnow() - older_than)):
                session.delete(row)


@dataclass
class ConversationRef:
    """The conversation's row as a turn found it: its id, whose it is, and where it stood before the turn."""

    id: int
    channel: str
    user_key: str
    category: str | None
    state: str
    salutation: str | None


_CONVERSATIONS = ConversationRow.__table__
_LOAD_CONVERSATION = select(*(_CONVERSATIONS.c[name] for name in (
    "id", "category", "state", "facts", "case_number", "greeted", "salutation", "offered", "offered_text", "later",
    "memory"))).where(_CONVERSATIONS.c.channel == bindparam("channel"), _CONVERSATIONS.c.user_key == bindparam("user_key"))
_LOAD_CONVERSATION_LOCKED = _LOAD_CONVERSATION.with_for_update()  # PostgreSQL: one turn of a customer at a time
_NEW_CONVERSATION = insert(_CONVERSATIONS).returning(_CONVERSATIONS.c.id)
_COUNTERS = CaseCounterRow.__table__
_NEXT_NUMBER = (update(_COUNTERS).where(_COUNTERS.c.day == bindparam("of_day")).values(last=_COUNTERS.c.last + 1)
                .returning(_COUNTERS.c.last))
_NEW_CASE = insert(CaseRow.__table__)
_ATTACHMENTS = AttachmentRow.__table__
_JOIN_ATTACHMENTS = (update(_ATTACHMENTS).where(_ATTACHMENTS.c.conversation_id == bindparam("of_conversation"),
                                                _ATTACHMENTS.c.case_number.is_(None))
                     .values(case_number=bindparam("number")))
# The SET clause is the parameters' column names: every column a turn may change.
_STORE_CONVERSATION = update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("row_id"))


class TurnTx:
    """The open transaction of one turn: loads the conversation, answers the engine's questions
    (it is the engine's Ledger), then writes what happened."""

    def __init__(self, store: Store, session: Session, channel: str, user_key: str, now: datetime):
        self.store = store
        self.session = session
        self.now = now
        # The conversation is read and written with plain statements on the session's connection, not as an
        # ORM row: loading, tracking and flushing a ConversationRow cost more than the statements themselves.
        if session.new or session.dirty or session.deleted:
            session.flush()  # what the unit wrote before the turn, as the ORM's autoflush would
        connection = self.connection = session.connection()
        query = _LOAD_CONVERSATION if session.bind.dialect.name == "sqlite" else _LOAD_CONVERSATION_LOCKED
        found = connection.execute(query, {"channel": channel, "user_key": user_key}).first()
        if found is None:
            conv = Conversation()
            row_id = connection.execute(_NEW_CONVERSATION, dict(
                channel=channel, user_key=user_key, category=None, state=conv.state, facts={}, case_number=None,
                greeted=False, salutation=None, offered=[], offered_text="", later=None, memory={},
                created_at=now, updated_at=now)).scalar_one()
            self.row = ConversationRef(row_id, channel, user_key, None, conv.state, None)
        else:
            (row_id, category, state, facts, case_number, greeted, salutation, offered, offered_text, later,
             memory) = found
            conv = Conversation(category, state, dict(facts), case_number, bool(greeted), salutation, list(offered),
                                offered_text, later, Memory.from_json(memory))
            self.row = ConversationRef(row_id, channel, user_key, category, state, salutation)
        self.conversation = conv

    def number_case(self, category: str) -> str:
        """Gives the next readable case number of the day: KF-YYYYMMDD-NNNN."""
        day = f"{self.now.astimezone(self.store.zone):%Y%m%d}"
        # One statement: the day's counter taken up by one and read back (on PostgreSQL the UPDATE holds the
        # row's lock until the turn commits, as SELECT … FOR UPDATE did).
        last = self.connection.execute(_NEXT_NUMBER, {"of_day": day}).scalar()
        if last is None:
            # The day's first case (or a database from before the counter: go on after its cases). Two
            # first cases at once: one insert fails and Service.handle runs that turn again.
            last = self.connection.execute(select(func.count()).select_from(CaseRow)
                                           .where(CaseRow.number.startswith(f"KF-{day}-"))).scalar_one() + 1
            self.connection.execute(insert(CaseCounterRow.__table__), {"day": day, "last": last})
        return f"KF-{day}-{last:04d}"

    def take_update(self, update_id: int) -> bool:
        """Marks a kept channel update handled by this turn, in the turn's own transaction; False if an
        earlier turn already did (a replay after a crash between that turn's commit and the update's end)."""
        # Locked on PostgreSQL, so a second worker replaying the same update waits for this turn's commit
        # (on SQLite, inside a Telegram unit, the row the unit loaded: no query).
        row = self.session.get(InboxRow, update_id, with_for_update=locked(self.session))
        if row is None:
            return True  # not kept in the inbox (another channel, or a test): nothing to guard
        if row.status == "done":
            return False
        row.status, row.done_at = "done", self.now
        self.session.add(row)
        return True

    def find_case(self, number: str) -> CaseView | None:
        case = self.session.exec(select(CaseRow).where(CaseRow.number == number)).first()
        return None if case is None else self._view(case)

    def my_cases(self) -> list[CaseView]:
        rows = self.session.exec(select(CaseRow).where(CaseRow.conversation_id == self.row.id, CaseRow.status == "open")
                                 .order_by(CaseRow.id.desc()))  # type: ignore[union-attr]
        return [self._view(case) for case in rows]

    def _view(self, case: CaseRow) -> CaseView:
        return CaseView(case.number, case.category, case.status, case.step, case.step_role,
                        aware(case.step_deadline), mine=case.conversation_id == self.row.id,
                        paused=case.paused_at is not None)

    def record(self, inbound: Inbound | None, turn: Turn) -> None:
        """Writes the inbound message (None: a message kefu sends unasked, such as a rating request),
        the replies, the events and the new conversation state."""
        row, conv, session, now = self.row, self.conversation, self.session, self.now
        # Messages and events are only ever added: written as plain rows in one statement each, without
        # building ORM objects for them (that was a third of a turn's time).
        messages = []
        if inbound is not None:
            messages.append(dict(conversation_id=row.id, direction="in", choice=inbound.choice, options=[],
                                 text=inbound.text if inbound.as_sent is None else inbound.as_sent,
                                 category=row.category, state=row.state, staff_id=None, at=now))
        messages += [dict(conversation_id=row.id, direction="out", text=reply.text, choice=None,
                          options=[[o.label, o.value] for o in reply.options], category=conv.category,
                          state=conv.state, staff_id=None, at=now) for reply in turn.replies]
        if messages:
            _insert_all(session, MessageRow.__table__, messages)
        for ev in turn.events:
            self._apply(ev, now)
        if turn.events:
            _insert_all(session, EventRow.__table__, [
                dict(conversation_id=row.id, case_number=ev.data.get("number") or ev.data.get("case"), kind=ev.kind,
                     data=_jsonable(ev.data), at=now) for ev in turn.events])
        self.connection.execute(_STORE_CONVERSATION, dict(
            row_id=row.id, category=conv.category, state=conv.state, facts=dict(conv.facts), case_number=conv.case_number,
            greeted=conv.greeted, salutation=conv.salutation, offered=list(conv.offered), offered_text=conv.offered_text,
            later=conv.later, memory=conv.memory.as_json(), updated_at=now))
        row.category, row.state, row.salutation = conv.category, conv.state, conv.salutation
        # A ConversationRow the unit loaded earlier (casework.customer_wrote) is read afresh if used again.
        loaded = session.identity_map.get(session.identity_key(ConversationRow, row.id))
        if loaded is not None:
            session.expire(loaded)

    def _apply(self, ev: Event, now: datetime) -> None:
        if ev.kind == "case_opened":
            facts = ev.data["facts"]
            if self.session.new or self.session.dirty:
                self.session.flush()  # an attachment the unit added before the turn: joined to the case below
            # A plain INSERT: the number's uniqueness is checked now, inside the turn.
            self.connection.execute(_NEW_CASE, dict(
                number=ev.data["number"], content_version=self.store.content_version, conversation_id=self.row.id,
                category=ev.data["category"], status="open", waybill=facts.get("waybill"), contact=facts.get("phone"),
                facts=facts, step=ev.data["step"], step_role=ev.data["role"], step_deadline=ev.data["deadline"],
                opened_at=now, closed_at=None, assigned_to=None, paused_at=None, reminded_at=None, top_alerted=False,
                rating=None, rating_reason=None))
            # Evidence sent before the case existed (a photo first, then the complaint) joins it.
            joined = self.connection.execute(_JOIN_ATTACHMENTS, {"of_conversation": self.row.id,
                                                                 "number": ev.data["number"]})
            if joined.rowcount:  # attachments the unit holds as ORM rows are read afresh
                for attachment in list(self.session.identity_map.values()):
                    if isinstance(attachment, AttachmentRow):
                        self.session.expire(attachment)
        elif ev.kind == "case_facts_corrected":
            case = self.session.exec(select(CaseRow).where(CaseRow.number == ev.data["case"])).first()
            if case is not None:
                case.facts = {**case.facts, **ev.data["facts"]}
                case.waybill, case.contact = case.facts.get("waybill"), case.facts.get("phone")
                self.session.add(case)
        elif ev.kind == "case_detail_added":  # more said about the case after it was opened: kept for staff
            case = self.session.exec(select(CaseRow).where(CaseRow.number == ev.data["case"])).first()
            if case is not None:
                case.facts = with_detail(case.facts, ev.data["text"])
                self.session.add(case)
        elif ev.kind == "rating_reason":
            case = self.session.exec(select(CaseRow).where(CaseRow.number == ev.data["case"])).first()
            if case is not None:
                case.rating_reason = ev.data["reason"]
                self.session.add(case)


def _insert_all(session: Session, table: Any, rows: list[dict]) -> None:
    """Inserts rows (dicts of the same keys) with a statement that SQLAlchemy compiles once and caches (a
    multi-row .values(rows) has no cache key, so it was compiled afresh at every turn), on the session's
    connection (not through the ORM's execution, which only adds work for a Core statement). One row: a
    plain INSERT. Several: on SQLite the driver's executemany, one C call; elsewhere with RETURNING, which
    SQLAlchemy batches into one INSERT … VALUES (…), (…) ("insertmanyvalues") where a plain executemany
    would run as a psycopg pipeline of one statement a row. The ids are not needed."""
    connection = session.connection()
    if len(rows) == 1:
        connection.execute(insert(table), rows[0])
    elif connection.dialect.name == "sqlite":
        connection.execute(insert(table), rows)
    else:
        connection.execute(insert(table).returning(table.c.id), rows)


def _jsonable(data: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}
