"""The durable inbox of raw Telegram updates: kept before Telegram is told they arrived, claimed one
customer at a time, retried after a failure, dead-lettered after the last."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, exists, insert, update
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from bot.storage.engine import reading, writing
from bot.storage.tables import InboxRow, OutboxRow, aware, utcnow

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

    def arrive(self, session: Session, update_id: int, user_key: str | None) -> InboxRow | None:
        """Keeps an update as it arrives, in the caller's transaction (the unit that handles it, so that keeping
        and handling are one commit); None if it is a redelivery of one already kept (to be dropped). Its body
        is not written: the row commits only with the update handled (the transcript has what it said), and a
        failure keeps the body (`fail`) for the retries."""
        now = utcnow()
        row = session.get(InboxRow, update_id, with_for_update=session.bind.dialect.name != "sqlite")
        if row is None:
            row = InboxRow(update_id=update_id, attempts=0, data={}, status="pending", received_at=now,
                           user_key=user_key)
        elif row.status == "pending":
            return row  # kept before and not handled yet (a process that only received it, then stopped)
        elif now - aware(row.received_at) < self.REDELIVERY:
            return None
        else:  # an id Telegram reused after a quiet week: the old row is taken over (its attempts kept)
            row.data, row.status, row.received_at, row.done_at, row.user_key = {}, "pending", now, None, user_key
        session.add(row)
        return row

    def claim(self, session: Session) -> InboxRow | None:
        """Takes the oldest update waiting to be handled, in the caller's transaction (a unit): on PostgreSQL
        a row another worker has taken is skipped, and a customer's update waits while an earlier one of
        theirs is waiting or being handled, so each customer is served in order, different ones in parallel."""
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

    def fail(self, update_id: int, error: str, attempts: int, first_wait: timedelta,
             data: dict | None = None, user_key: str | None = None) -> str:
        """Records a failed attempt: the update is tried again later (each wait 6x the one before), or,
        after `attempts` failures, dead-lettered. Returns the new status, retry or dead. An update not kept
        yet (it was to be kept by the unit that failed) is kept now, with its data."""
        with writing(self.db) as session:
            # Locked and read afresh: the unit's rollback dropped its lock, and another worker may have handled it.
            row = session.get(InboxRow, update_id, with_for_update=self.db.dialect.name != "sqlite",
                              populate_existing=True)
            if row is None and data is None:
                return "dead"
            if row is None:
                row = InboxRow(update_id=update_id, attempts=0, data=data, status="pending", received_at=utcnow(),
                               user_key=user_key)
            elif data is not None and not row.data:  # kept by `arrive`, without its body
                row.data = data
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

