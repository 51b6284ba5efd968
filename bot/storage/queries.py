"""Reads for the supervisor pages, their Telegram shortcuts and `kefu cases`: cases filtered and paged, one case with its
transcript and timeline, the dashboard's figures, training sessions (failed updates: bot/storage/inbox.py). Every
function takes an open session and returns plain values; none writes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from sqlalchemy import String, and_, cast, exists, false, func, or_
from sqlmodel import Session, select

from bot.storage.tables import AttachmentRow, CaseMarkRow, CaseRow, EventRow, MessageRow, TrainingRow, aware

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
    from bot.storage.tables import ConversationRow

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
    query = select(TrainingRow).order_by(TrainingRow.id)
    if not scope.everything:
        query = query.where(TrainingRow.trainee == scope.trainee)
    by_trainee: dict[str, list[TrainingRow]] = {}
    for row in session.exec(query):
        by_trainee.setdefault(row.trainee, []).append(row)
    return dict(sorted(by_trainee.items()))


def training_session(session: Session, session_id: int, scope: Scope = Scope()) -> TrainingRow | None:
    row = session.get(TrainingRow, session_id)
    if row is None or (not scope.everything and row.trainee != scope.trainee):
        return None
    return row
