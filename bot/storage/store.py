"""The store: one customer turn in one transaction (the conversation loaded, the engine's questions
answered, every message, event and case it made written), and the staff mode asked at every private message."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone, tzinfo
from typing import Any, Iterator

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from bot.storage import queries
from bot.storage.engine import locked, reading, writing
from bot.storage.tables import (AttachmentRow, CaseCounterRow, CaseRow, ConversationRow, EventRow, InboxRow,
                                MessageRow, StaffModeRow, aware, utcnow)
from dialogs.conversation import CaseView, Conversation, Event, Inbound, Memory, Turn, with_detail

_UNSTORABLE = re.compile("[\ud800-\udfff]")
_UNSTORABLE_PG = re.compile("[\ud800-\udfff\x00]")


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
        case = queries.case_by_number(self.session, number)
        return None if case is None else self._view(case)

    def my_cases(self) -> list[CaseView]:
        rows = queries.open_cases(self.session, self.row.id)
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
            case = queries.case_by_number(self.session, ev.data["case"])
            if case is not None:
                case.facts = {**case.facts, **ev.data["facts"]}
                case.waybill, case.contact = case.facts.get("waybill"), case.facts.get("phone")
                self.session.add(case)
        elif ev.kind == "case_detail_added":  # more said about the case after it was opened: kept for staff
            case = queries.case_by_number(self.session, ev.data["case"])
            if case is not None:
                case.facts = with_detail(case.facts, ev.data["text"])
                self.session.add(case)
        elif ev.kind == "rating_reason":
            case = queries.case_by_number(self.session, ev.data["case"])
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
