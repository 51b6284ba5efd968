"""Every read of kefu's tables outside a turn (the turn's own statements are bot/storage/store.py's, the
inbox's and outbox's theirs): for the supervisor pages, their Telegram shortcuts and `kefu cases` (cases
filtered and paged, one case with its transcript and timeline, the dashboard's figures, training
sessions), for casework and the staff assistant (staff, a customer's conversation and cases, deadlines
due), and for customers' data, reports, drafts, the audit log and web users. Every function takes an
open session and returns what it read: plain values, or rows that a caller may change in its own
transaction; none writes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from sqlalchemy import String, and_, bindparam, cast, exists, false, func, or_
from sqlmodel import Session, select

from bot.storage.tables import (AttachmentRow, AuditRow, CaseMarkRow, CaseRow, ConversationRow, DraftReviewRow, EventRow,
                                InboxRow, MessageRow, StaffRow, TrainingRow, WebUserRow, aware)

PER_PAGE = 50


@dataclass(frozen=True)
class Scope:
    """Whose work a reader may see: everything, or only the cases assigned to one Telegram id and the
    training sessions of one trainee (a staff member's own)."""

    assigned_to: int | None = None
    trainee: str | None = None
    everything: bool = True

    @classmethod
    def own(cls, telegram_id: int | None, trainee: str) -> "Scope":
        return cls(telegram_id, trainee, everything=False)


@dataclass(frozen=True)
class CaseFilter:
    category: str | None = None
    status: str | None = None  # open, closed; None: both
    overdue: bool = False  # open, running (not waiting on the customer) and past its step's deadline
    opened_from: date | None = None  # local dates, both ends included
    opened_to: date | None = None
    assigned_to: int | None = None
    search: str = ""  # words, each found in the case number, waybill, phone, or what the customer or staff wrote
    # A branch, as far as kefu knows one: cases record no branch, so a place (shared.yaml routing.places)
    # the customer named in the case's facts or in what they wrote (the 15-day report infers it the same way).
    place: str | None = None


@dataclass(frozen=True)
class CasePage:
    cases: list[CaseRow]
    total: int
    page: int
    pages: int


def _midnight(day: date, zone: tzinfo) -> datetime:
    """The start of a local day, in UTC: SQLite keeps kefu's times as UTC without their zone."""
    return datetime.combine(day, time(), zone).astimezone(timezone.utc)


def _like(word: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


def _scoped(query, scope: Scope):
    if not scope.everything:
        # A staff member without a Telegram id has no cases of their own: nothing matches.
        query = query.where(CaseRow.assigned_to == scope.assigned_to if scope.assigned_to is not None else false())
    return query


def _overdue(now: datetime):
    return and_(CaseRow.status == "open", CaseRow.paused_at.is_(None), CaseRow.step_deadline < now)  # type: ignore[union-attr]


def _filtered(query, f: CaseFilter, zone: tzinfo, now: datetime):
    if f.category:
        query = query.where(CaseRow.category == f.category)
    if f.status:
        query = query.where(CaseRow.status == f.status)
    if f.overdue:
        query = query.where(_overdue(now))
    if f.opened_from:
        query = query.where(CaseRow.opened_at >= _midnight(f.opened_from, zone))
    if f.opened_to:
        query = query.where(CaseRow.opened_at < _midnight(f.opened_to + timedelta(days=1), zone))
    if f.assigned_to is not None:
        query = query.where(CaseRow.assigned_to == f.assigned_to)
    if f.place:
        named = exists().where(MessageRow.conversation_id == CaseRow.conversation_id, MessageRow.direction == "in",
                               MessageRow.text.like(_like(f.place), escape="\\"))  # type: ignore[union-attr]
        # JSON keeps non-ASCII as \uXXXX escapes: the place is looked for as it is stored.
        stored = _like(json.dumps(f.place)[1:-1])
        query = query.where(or_(named, cast(CaseRow.facts, String).like(stored, escape="\\")))
    for word in f.search.split():
        pattern = _like(word)
        # What people wrote (the customer, staff), not kefu's own texts, which every conversation shares.
        said = exists().where(MessageRow.conversation_id == CaseRow.conversation_id,
                              or_(MessageRow.direction == "in", MessageRow.staff_id.is_not(None)),  # type: ignore[union-attr]
                              MessageRow.text.like(pattern, escape="\\"))  # type: ignore[union-attr]
        query = query.where(or_(CaseRow.number.like(pattern.upper(), escape="\\"),
                                CaseRow.waybill.like(pattern, escape="\\"),  # type: ignore[union-attr]
                                CaseRow.contact.like(pattern, escape="\\"),  # type: ignore[union-attr]
                                said))
    return query


def case_page(session: Session, f: CaseFilter, page: int, zone: tzinfo, now: datetime, scope: Scope = Scope(),
              per_page: int = PER_PAGE) -> CasePage:
    """One page of the cases that match, newest first (LIMIT/OFFSET on the primary key's order)."""
    matching = _filtered(_scoped(select(CaseRow), scope), f, zone, now)
    total = session.exec(select(func.count()).select_from(matching.subquery())).one()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.exec(matching.order_by(CaseRow.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()  # type: ignore[union-attr]
    return CasePage(list(rows), total, page, pages)


def all_cases(session: Session, f: CaseFilter, zone: tzinfo, now: datetime, scope: Scope = Scope()) -> list[CaseRow]:
    """Every case that matches, oldest first (the command line lists them all)."""
    return list(session.exec(_filtered(_scoped(select(CaseRow), scope), f, zone, now).order_by(CaseRow.id)))  # type: ignore[arg-type]


def cases_count(session: Session) -> int:
    """How many cases there are, open or closed."""
    return session.exec(select(func.count()).select_from(CaseRow)).one()


def is_overdue(case: CaseRow, now: datetime) -> bool:
    return case.status == "open" and case.paused_at is None and aware(case.step_deadline) < now


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRow
    channel: str
    user_key: str
    messages: list[MessageRow]  # this case's part of the conversation, in order
    events: list[EventRow]  # what happened to the case, in order
    attachments: list[AttachmentRow]
    marks: list[CaseMarkRow] = field(default_factory=list)


def case_detail(session: Session, number: str, scope: Scope = Scope()) -> CaseDetail | None:
    """A case with its transcript: the conversation's messages after the turn that opened the customer's
    previous case, up to the turn that opened their next one (so a complaint's beginning is never cut
    off; the talk between two cases shows on both). None when there is no such case, or not the reader's."""
    case = session.exec(_scoped(select(CaseRow).where(CaseRow.number == number.strip().upper()), scope)).first()
    if case is None:
        return None
    conv = session.get(ConversationRow, case.conversation_id)
    siblings = session.exec(select(CaseRow.opened_at).where(CaseRow.conversation_id == case.conversation_id)
                            .order_by(CaseRow.id)).all()
    opened = [aware(o) for o in siblings]
    mine = opened.index(aware(case.opened_at))
    query = select(MessageRow).where(MessageRow.conversation_id == case.conversation_id)
    if mine > 0:
        query = query.where(MessageRow.at > opened[mine - 1])
    if mine + 1 < len(opened):
        query = query.where(MessageRow.at < opened[mine + 1])
    messages = session.exec(query.order_by(MessageRow.id)).all()
    events = session.exec(select(EventRow).where(EventRow.case_number == case.number).order_by(EventRow.id)).all()
    attachments = session.exec(select(AttachmentRow).where(AttachmentRow.case_number == case.number)
                               .order_by(AttachmentRow.id)).all()
    marks = session.exec(select(CaseMarkRow).where(CaseMarkRow.case_number == case.number).order_by(CaseMarkRow.id)).all()
    return CaseDetail(case, conv.channel if conv else "", conv.user_key if conv else "", list(messages), list(events),
                      list(attachments), list(marks))


@dataclass(frozen=True)
class Dashboard:
    open: int
    overdue: int
    week: dict[str, int]  # category id -> cases opened since Monday (local)
    month: dict[str, int]  # category id -> cases opened since the 1st (local)
    closed_this_month: int
    mean_hours_to_close: float | None  # over the cases closed this month
    rating_mean: float | None  # over the rated cases closed this month
    rated: int


def dashboard(session: Session, zone: tzinfo, now: datetime, scope: Scope = Scope()) -> Dashboard:
    """The figures of the dashboard, counted in the reader's scope; weeks and months in local time."""
    today = now.astimezone(zone).date()
    week_start = _midnight(today - timedelta(days=today.weekday()), zone)
    month_start = _midnight(today.replace(day=1), zone)

    def count(*where) -> int:
        return session.exec(_scoped(select(func.count()).select_from(CaseRow).where(*where), scope)).one()

    def per_category(since: datetime) -> dict[str, int]:
        query = _scoped(select(CaseRow.category, func.count()).where(CaseRow.opened_at >= since)
                        .group_by(CaseRow.category), scope)
        return dict(sorted(session.exec(query).all(), key=lambda pair: (-pair[1], pair[0])))

    closed = session.exec(_scoped(select(CaseRow.opened_at, CaseRow.closed_at, CaseRow.rating)
                                  .where(CaseRow.status == "closed", CaseRow.closed_at >= month_start), scope)).all()
    hours = [(aware(c) - aware(o)).total_seconds() / 3600 for o, c, _ in closed if c is not None]
    ratings = [r for _, _, r in closed if r is not None]
    return Dashboard(
        open=count(CaseRow.status == "open"), overdue=count(_overdue(now)),
        week=per_category(week_start), month=per_category(month_start), closed_this_month=len(closed),
        mean_hours_to_close=sum(hours) / len(hours) if hours else None,
        rating_mean=sum(ratings) / len(ratings) if ratings else None, rated=len(ratings),
    )


def training_sessions(session: Session, scope: Scope = Scope()) -> dict[str, list[TrainingRow]]:
    """Every trainee's sessions, oldest first (a staff member: only their own)."""
    by_trainee: dict[str, list[TrainingRow]] = {}
    for row in training_history(session, None if scope.everything else scope.trainee):
        by_trainee.setdefault(row.trainee, []).append(row)
    return dict(sorted(by_trainee.items()))


def training_session(session: Session, session_id: int, scope: Scope = Scope()) -> TrainingRow | None:
    row = session.get(TrainingRow, session_id)
    if row is None or (not scope.everything and row.trainee != scope.trainee):
        return None
    return row


def training_history(session: Session, trainee: str | None = None) -> list[TrainingRow]:
    """One trainee's sessions (None: everyone's), oldest first."""
    query = select(TrainingRow).order_by(TrainingRow.id)
    if trainee is not None:
        query = query.where(TrainingRow.trainee == trainee)
    return list(session.exec(query))


# -- casework and the staff assistant ------------------------------------------------------------------

# Statements run at every customer message, built once: building one (its comparisons, its cache key) cost
# more than running it.
_CONVERSATION_OF = select(ConversationRow).where(ConversationRow.channel == bindparam("channel"),
                                                 ConversationRow.user_key == bindparam("user_key"))
_OPEN_CASES = (select(CaseRow).where(CaseRow.conversation_id == bindparam("conversation_id"), CaseRow.status == "open")
                     .order_by(CaseRow.id.desc()))  # type: ignore[union-attr]
_ALL_STAFF = select(StaffRow).order_by(StaffRow.telegram_id)


def all_staff(session: Session) -> list[StaffRow]:
    """Every staff member kefu knows, by Telegram id."""
    return list(session.exec(_ALL_STAFF))


def conversation_of(session: Session, channel: str, user_key: str) -> ConversationRow | None:
    return session.exec(_CONVERSATION_OF, params={"channel": channel, "user_key": user_key}).first()


def open_cases(session: Session, conversation_id: int) -> list[CaseRow]:
    """The conversation's open cases, newest first."""
    return list(session.exec(_OPEN_CASES, params={"conversation_id": conversation_id}))


def latest_open_case(session: Session, conversation_id: int) -> CaseRow | None:
    """The conversation's newest open case."""
    return session.exec(_OPEN_CASES, params={"conversation_id": conversation_id}).first()


def latest_case(session: Session, conversation_id: int) -> CaseRow | None:
    """The conversation's newest case, open or closed."""
    return session.exec(select(CaseRow).where(CaseRow.conversation_id == conversation_id)
                        .order_by(CaseRow.id.desc())).first()  # type: ignore[union-attr]


def case_by_number(session: Session, number: str) -> CaseRow | None:
    return session.exec(select(CaseRow).where(CaseRow.number == number)).first()


def has_tag(session: Session, number: str, tag: str) -> bool:
    return session.exec(select(CaseMarkRow.id).where(CaseMarkRow.case_number == number, CaseMarkRow.kind == "tag",
                                                     CaseMarkRow.text == tag)).first() is not None


def running_open_cases(session: Session) -> list[CaseRow]:
    """The open cases whose deadline clock runs (not waiting on the customer). On PostgreSQL each is locked
    and one another worker holds is skipped: several workers check deadlines, each case is taken by one."""
    query = select(CaseRow).where(CaseRow.status == "open", CaseRow.paused_at.is_(None))  # type: ignore[union-attr]
    if session.bind.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query).all())


def closes_and_escalations(session: Session, since: datetime) -> list[EventRow]:
    """The cases closed or escalated since then, oldest first; locked as running_open_cases() (every worker
    looks: each is taken by one)."""
    query = select(EventRow).where(EventRow.kind.in_(("case_closed", "step_escalated")),  # type: ignore[attr-defined]
                                   EventRow.at >= since).order_by(EventRow.id)
    if session.bind.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query).all())


def until_case_opened(session: Session, case: CaseRow) -> tuple[list[MessageRow], list[EventRow]]:
    """The case's conversation up to the case's opening: its messages in order, and its events."""
    messages = session.exec(select(MessageRow).where(MessageRow.conversation_id == case.conversation_id,
                                                     MessageRow.at <= case.opened_at)
                            .order_by(MessageRow.id)).all()  # type: ignore[arg-type]
    events = session.exec(select(EventRow).where(EventRow.conversation_id == case.conversation_id,
                                                 EventRow.at <= case.opened_at)).all()
    return list(messages), list(events)


# -- a customer's data: export, erasure, retention --------------------------------------------------------

def conversations_of(session: Session, user_key: str, channel: str | None = None) -> list[ConversationRow]:
    """A customer's conversations (on one channel, or on all), oldest first."""
    query = select(ConversationRow).where(ConversationRow.user_key == user_key)
    if channel:
        query = query.where(ConversationRow.channel == channel)
    return list(session.exec(query.order_by(ConversationRow.id)))


def kept_of(session: Session, table: type[MessageRow | EventRow | CaseRow | AttachmentRow],
            conversation_id: int) -> list:
    """A conversation's rows of one table (messages, events, cases or attachments), in the order written."""
    return list(session.exec(select(table).where(table.conversation_id == conversation_id).order_by(table.id)))


def telegram_updates(session: Session) -> list[InboxRow]:
    """Every raw Telegram update kept, oldest first."""
    return list(session.exec(select(InboxRow).order_by(InboxRow.update_id)))


def failed_updates(session: Session) -> list[InboxRow]:
    """The Telegram updates that failed: waiting for a retry or dead, oldest first."""
    return list(session.exec(select(InboxRow).where(InboxRow.status.in_(("retry", "dead")))  # type: ignore[attr-defined]
                             .order_by(InboxRow.update_id)))


def idle_conversations(session: Session, before: datetime) -> list[ConversationRow]:
    """The conversations last changed before then."""
    return list(session.exec(select(ConversationRow).where(ConversationRow.updated_at < before)))


def handled_updates(session: Session, before: datetime) -> list[InboxRow]:
    """The Telegram updates received before then and no longer waiting to be handled."""
    return list(session.exec(select(InboxRow).where(InboxRow.status != "pending", InboxRow.received_at < before)))


# -- reports, drafts, the audit log, web users ------------------------------------------------------------

def cases_opened(session: Session, start: datetime, end: datetime, categories: list[str] | None = None) -> list[CaseRow]:
    """The cases opened from start up to (not including) end, oldest first; only these categories if given."""
    query = select(CaseRow).where(CaseRow.opened_at >= start, CaseRow.opened_at < end)
    if categories is not None:
        query = query.where(CaseRow.category.in_(categories))  # type: ignore[attr-defined]
    return list(session.exec(query.order_by(CaseRow.opened_at, CaseRow.id)).all())


def texts_sent(session: Session, since: datetime) -> list[tuple[str | None, str | None, int]]:
    """Each text kefu sent since then, with the category it was sent in and how many times."""
    return list(session.exec(select(MessageRow.text, MessageRow.category, func.count())
                             .where(MessageRow.direction == "out", MessageRow.at >= since)
                             .group_by(MessageRow.text, MessageRow.category)).all())


def draft_reviews(session: Session, key: str | None = None) -> list[DraftReviewRow]:
    """The reviews of every draft (or of the one with this key), oldest first."""
    query = select(DraftReviewRow)
    if key is not None:
        query = query.where(DraftReviewRow.key == key)
    return list(session.exec(query.order_by(DraftReviewRow.at, DraftReviewRow.id)).all())


def audit_entries(session: Session) -> list[AuditRow]:
    """The audit log, oldest first."""
    return list(session.exec(select(AuditRow).order_by(AuditRow.id)))


def web_user(session: Session, name: str) -> WebUserRow | None:
    return session.exec(select(WebUserRow).where(WebUserRow.name == name)).first()
