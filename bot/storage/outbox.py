"""The outbox: every message kefu sends to Telegram, written in the same transaction as the update (or
deadline check) that caused it and sent after that transaction commits. A crash after the commit sends
what was not yet sent at the next start, and never runs the update again; a throttled customer's answer
waits here for its time, not in memory."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from bot.storage.engine import reading, writing
from bot.storage.tables import OutboxRow, aware, utcnow


# A call still unmade this long after its commit was left by a process that stopped (a live one makes its
# calls at once; a flood wait of Telegram's can hold it up for a while, hence not less).
LEFT_AFTER = timedelta(seconds=30)

# The calls queued by the update being handled; written with its transaction (TelegramBot's unit).
QUEUED: ContextVar[list[OutboxRow] | None] = ContextVar("kefu_outbox", default=None)


def queue(row: OutboxRow) -> None:
    """Adds a call to the current unit's outbox (it must run inside one)."""
    queued = QUEUED.get()
    assert queued is not None, "Telegram calls are made inside a unit (TelegramBot.unit)"
    queued.append(row)


class Outbox:
    def __init__(self, db: DbEngine):
        self.db = db

    def holds(self, user_key: str) -> bool:
        """Whether a throttled customer has an answer waiting (they were told to slow down already)."""
        with reading(self.db) as session:
            return session.exec(select(OutboxRow.id).where(OutboxRow.held_for == user_key,
                                                           OutboxRow.status == "pending")).first() is not None

    def write(self, session: Session, rows: list[OutboxRow]) -> None:
        """Writes a unit's calls in its transaction; a held answer replaces the one its customer had waiting."""
        for user_key in {row.held_for for row in rows if row.held_for}:
            _drop_held(session, user_key)
        if not rows:
            return
        now = utcnow()
        for row in rows:
            row.created_at = now  # committed now: a slow unit's calls must not look left behind
        # Plain INSERT … RETURNING id, not the ORM's flush and its bookkeeping per row. The ids come back in
        # the rows' order (sort_by_parameter_order: one statement for all rows on PostgreSQL; one a row on
        # SQLite, which does not promise the order of a batch's RETURNING). The rows stay out of the
        # session: they are only read after this (sent, then marked by id).
        ids = session.execute(_NEW_CALLS, [{name: getattr(row, name) for name in _CALL_COLUMNS} for row in rows]).scalars().all()
        for row, i in zip(rows, ids):
            row.id = i

    def release(self, user_key: str) -> None:
        """A customer may write again: the answer held for them is replaced by the one about to go."""
        with writing(self.db) as session:
            _drop_held(session, user_key)

    def due(self) -> list[OutboxRow]:
        """The calls whose time came, in the order they were queued: held answers due, and calls a stopped
        process left (queued a while ago, so that none a live worker is about to make is made twice)."""
        now = utcnow()
        with reading(self.db) as session:
            rows = session.exec(select(OutboxRow).where(OutboxRow.status == "pending").order_by(OutboxRow.id)).all()
        return [row for row in rows if (aware(row.send_at) <= now if row.send_at is not None
                                        else aware(row.created_at) <= now - LEFT_AFTER)]

    @staticmethod
    def now_due(rows: list[OutboxRow]) -> list[OutboxRow]:
        """Of a unit's calls just committed, those to make at once (a held answer waits for its time)."""
        now = utcnow()
        return [row for row in rows if row.send_at is None or aware(row.send_at) <= now]

    def done(self, results: dict[int, str | None]) -> None:
        """Marks calls made: sent (None) or failed (the error); one statement for all the sent ones."""
        if not results:
            return
        now = utcnow()
        sent = [i for i, error in results.items() if error is None]
        # Statements on the table, not the ORM class: an ORM-enabled UPDATE also looks for the rows in the
        # session to keep them in step, and none is there (a unit's rows are written by Core, see write;
        # those due() found were read by a session since closed).
        with writing(self.db) as session:
            if sent:
                session.execute(_CALLS_SENT, {"ids": sent, "sent_when": now})
            for i, error in results.items():
                if error is not None:
                    session.execute(_CALL_FAILED, {"id_": i, "status": "failed", "error": error, "sent_at": now})

    def prune(self, older_than: timedelta = timedelta(days=7)) -> None:
        """Forgets calls made a week ago (the transcript keeps the messages)."""
        with writing(self.db) as session:
            for row in session.exec(select(OutboxRow).where(OutboxRow.status != "pending",
                                                            OutboxRow.created_at < utcnow() - older_than)):
                session.delete(row)


# Built once (building a statement cost more than running it): a unit's calls, inserted with their ids back
# in order, and the marks of calls made.
_CALLS = OutboxRow.__table__
_CALL_COLUMNS = [c.name for c in _CALLS.columns if c.name != "id"]
_NEW_CALLS = insert(_CALLS).returning(_CALLS.c.id, sort_by_parameter_order=True)
_CALLS_SENT = (update(_CALLS).where(_CALLS.c.id.in_(bindparam("ids", expanding=True)))
               .values(status="sent", sent_at=bindparam("sent_when")))
_CALL_FAILED = update(_CALLS).where(_CALLS.c.id == bindparam("id_"))  # SET: the parameters' columns


def _drop_held(session: Session, user_key: str) -> None:
    """The answer a throttled customer had waiting is not sent: a newer one replaces it."""
    session.execute(update(OutboxRow).where(OutboxRow.held_for == user_key, OutboxRow.status == "pending")
                    .values(status="dropped"))
