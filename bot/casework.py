"""Casework for staff: who the staff are, case cards, claiming, replying, resolving, escalating,
deadlines and ratings. Channel-neutral: the Telegram adapter (and later the web pages) call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from bot.service import Service
from bot.storage import queries
from bot.storage.tables import (AttachmentRow, CaseMarkRow, CaseRow, ConversationRow, EventRow, MessageRow, StaffRow, aware,
                                utcnow)
from dialogs.caserules import asks_reason, can_escalate, overdue, ratable, reason_wanted, resumed_deadline
from dialogs.conversation import AFTER, MENU, Event, Inbound, Option, Reply, Turn
from dialogs.conversation import REASON
from dialogs.engine import CASE_NUMBER
from dialogs.hours import Day
from dialogs.matching import is_number, normalize
from dialogs.render import render, template_values

STAFF_ROLES = ("staff", "supervisor", "admin")


class CaseworkError(Exception):
    """A staff action that cannot be done, with a message for the staff member (Chinese)."""


@dataclass(frozen=True)
class StaffMember:
    telegram_id: int
    role: str  # staff, supervisor or admin
    chat_id: int | None  # where this member's case cards go (a group, or their private chat)
    handles: tuple[str, ...]  # handling roles (customer_service, branch_manager, ...) they cover; empty: all


@dataclass(frozen=True)
class CaseCard:
    """Everything staff see about a case, ready to post."""

    number: str
    category: str
    category_name: str
    status: str  # open, closed
    facts: tuple[tuple[str, str], ...]  # (label, value) in the category's order
    step: int  # 1-based
    steps: int
    role: str  # the handling role that acts now
    role_name: str
    action: str  # the manual's handling step for this stage
    deadline: datetime
    deadline_text: str  # local time, e.g. 11月27日 18:00
    assigned_to: int | None
    paused: bool  # waiting on the customer: the deadline clock is stopped
    canned: tuple[str, ...]  # the category's answer points, filled with the case's facts
    channel: str  # the customer's channel and user key, to reach them
    user_key: str

    def text(self) -> str:
        """The card as plain text (Chinese), for a staff chat."""
        lines = [f"案件 {self.number}｜{self.category_name}｜{'处理中' if self.status == 'open' else '已办结'}"]
        lines += [f"{label}：{value}" for label, value in self.facts]
        lines.append(f"第{self.step}/{self.steps}步 {self.role_name}：{self.action}")
        lines.append(f"期限：{self.deadline_text}" + ("（等待客户回复，计时暂停）" if self.paused else ""))
        if self.assigned_to:
            lines.append(f"跟进人：{self.assigned_to}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Due:
    """A case whose step deadline has passed: remind its chat, or (after the grace period) escalate."""

    kind: str  # remind, escalated, top (already at the last step: the supervisors are told)
    card: CaseCard


class Casework:
    def __init__(self, service: Service, grace: timedelta = timedelta(hours=2)):
        self.service = service
        self.content = service.content
        self.grace = grace  # after a reminder, how long before the case moves up a step

    # -- staff ---------------------------------------------------------------------------------

    def add_staff(self, telegram_id: int, role: str, chat_id: int | None = None,
                  handles: Iterable[str] = ()) -> StaffMember:
        """Adds or updates a staff member."""
        if role not in STAFF_ROLES:
            raise CaseworkError(f"未知角色 {role}，可选：{', '.join(STAFF_ROLES)}")
        handles = tuple(handles)
        unknown = [h for h in handles if h not in self.content.shared.roles]
        if unknown:
            raise CaseworkError(f"未知的处理角色：{', '.join(unknown)}（可选：{', '.join(self.content.shared.roles)}）")
        with self.service.store.writing() as session:
            row = session.get(StaffRow, telegram_id) or StaffRow(telegram_id=telegram_id, role=role)
            row.role, row.chat_id, row.handles = role, chat_id, list(handles)
            session.add(row)
        return StaffMember(telegram_id, role, chat_id, handles)

    def remove_staff(self, telegram_id: int) -> bool:
        """Removes a staff member (audited); False if there is no such member."""
        from bot import audit

        with self.service.store.writing() as session:
            row = session.get(StaffRow, telegram_id)
            if row is None:
                return False
            session.delete(row)
            audit.record(session, "staff_remove", str(telegram_id), {"role": row.role})
        return True

    def staff(self, telegram_id: int) -> StaffMember | None:
        """The staff member with this Telegram id, or None for a customer."""
        with self.service.store.reading() as session:
            row = session.get(StaffRow, telegram_id)
            return _member(row) if row else None

    def all_staff(self) -> list[StaffMember]:
        with self.service.store.reading() as session:
            return [_member(r) for r in queries.all_staff(session)]

    def chats_for(self, handling_role: str) -> list[int]:
        """The staff chats a card for this handling role goes to: those of the staff who cover it,
        else every staff chat (so no case goes unseen)."""
        members = [m for m in self.all_staff() if m.chat_id is not None]
        covering = [m for m in members if handling_role in m.handles]
        return sorted({m.chat_id for m in (covering or members)})  # type: ignore[misc]

    def supervisor_chats(self) -> list[int]:
        return sorted({m.chat_id for m in self.all_staff() if m.role in ("supervisor", "admin") and m.chat_id is not None})

    def staff_chats(self) -> list[int]:
        """Every configured staff chat: what is said there is staff talk, never a customer's."""
        return sorted({m.chat_id for m in self.all_staff() if m.chat_id is not None})

    # -- cases ---------------------------------------------------------------------------------

    def card(self, number: str) -> CaseCard:
        """The case card of a case (CaseworkError if there is no such case)."""
        with self.service.store.reading() as session:
            return self.card_in(session, number)

    def card_in(self, session, number: str) -> CaseCard:
        """card() inside the caller's transaction."""
        case, conv = self._case(session, number)
        return self._card(case, conv)

    def claim(self, number: str, staff_id: int) -> CaseCard:
        """Assigns the case to this staff member."""
        with self.service.store.writing() as session:
            return self.claim_in(session, number, staff_id)

    def claim_in(self, session, number: str, staff_id: int) -> CaseCard:
        """claim() inside the caller's transaction: a guided complaint claims the case its turn opens."""
        case, conv = self._case(session, number, open_only=True)
        case.assigned_to = staff_id
        self._event(session, case, "case_claimed", {"staff": staff_id})
        return self._card(case, conv)

    def confirm_step_in(self, session, number: str, staff_id: int, step: int) -> None:
        """Records that the staff member did a handling step (0-based) of the case, in the caller's transaction."""
        case, _ = self._case(session, number)
        self._event(session, case, "step_confirmed", {"staff": staff_id, "step": step})

    def reply(self, number: str, staff_id: int, text: str) -> CaseCard:
        """Records a staff member's reply to the customer (the adapter sends it, headed as reply_text()
        words it); the case now waits on the customer, so its deadline clock stops until they answer."""
        if not text.strip():
            raise CaseworkError("回复内容不能为空")
        with self.service.store.writing() as session:
            case, conv = self._case(session, number, open_only=True)
            now = utcnow()
            if case.assigned_to is None:
                case.assigned_to = staff_id
            session.add(MessageRow(conversation_id=conv.id, direction="out", text=text, category=conv.category,
                                   state=conv.state, at=now, staff_id=staff_id))
            if case.paused_at is None:
                case.paused_at = now
            self._event(session, case, "staff_replied", {"staff": staff_id})
            return self._card(case, conv)

    def reply_text(self, number: str, text: str) -> str:
        """A staff member's words as the customer receives them: which case they answer, then the words."""
        return f"{render(self.content.shared.texts.staff_reply.text, self._values(number))}\n{text.strip()}"

    def customer_wrote(self, channel: str, user_key: str) -> CaseCard | None:
        """Called for each customer message: restarts the clock of their open case that waited on them,
        and returns that case's card when a staff member follows it (to forward the message)."""
        with self.service.store.writing() as session:
            conv = queries.conversation_of(session, channel, user_key)
            if conv is None:
                return None
            case = queries.latest_open_case(session, conv.id)
            if case is None:
                return None
            if case.paused_at is not None:
                case.step_deadline = resumed_deadline(self._day(case.step_role), aware(case.step_deadline),
                                                      aware(case.paused_at), utcnow())
                case.paused_at = None
            return self._card(case, conv) if case.assigned_to else None

    def relay(self, channel: str, user_key: str, text: str) -> tuple[CaseCard, Reply] | None:
        """Takes a customer's typed words for the staff member who follows their open case: when the
        conversation is idle at the menu (no complaint in progress) and the words are no command
        and no case number. Records them with the answer to the customer and returns the case card
        (the adapter forwards the words to that staff member) and that answer; None: the engine
        handles the message."""
        words = normalize(text).casefold()
        commands = {normalize(w).casefold() for ws in self.content.shared.commands.model_dump().values() for w in ws}
        if (not words or words in commands or words.startswith("/") or is_number(text)  # a menu choice by number
                or CASE_NUMBER.search(normalize(text))):
            return None
        with self.service.store.turn(channel, user_key) as tx:
            conv = tx.conversation
            if conv.category is not None or conv.state not in (MENU, AFTER):  # idle: nothing is being asked
                return None
            case = queries.latest_open_case(tx.session, tx.row.id)
            if case is None or case.assigned_to is None:
                return None
            answer = Reply(render(self.content.shared.texts.relayed.text, self._values(case.number)))
            tx.record(Inbound(text=text), Turn([answer], [Event("relayed_to_staff", {"case": case.number,
                                                                                    "staff": case.assigned_to})]))
            return self._card(case, tx.row), answer

    def attach(self, channel: str, user_key: str, kind: str, file_id: str, meta: dict, shown: str) -> Reply:
        """Keeps a photo or document a customer sent, with their latest case (or, before there is one,
        with the conversation: the next case opened takes it). shown: the message as the transcript
        shows it (e.g. "[照片] 外箱破损"). Returns the answer to send."""
        texts = self.content.shared.texts
        with self.service.store.turn(channel, user_key) as tx:
            case = queries.latest_case(tx.session, tx.row.id)
            number = case.number if case is not None else None
            tx.session.add(AttachmentRow(conversation_id=tx.row.id, case_number=number, kind=kind, file_id=file_id,
                                         meta=meta, at=tx.now))
            answer = Reply(render((texts.attachment_saved if number else texts.attachment_kept).text, self._values(number)))
            tx.record(Inbound(text=shown), Turn([answer], [Event("attachment_received", {"case": number, "kind": kind})]))
        return answer

    def latest_case(self, channel: str, user_key: str) -> str | None:
        """The number of the customer's latest case, if any (for logs and forwarding)."""
        with self.service.store.reading() as session:
            conv = queries.conversation_of(session, channel, user_key)
            if conv is None:
                return None
            case = queries.latest_case(session, conv.id)
            return case.number if case else conv.case_number

    def escalate(self, number: str, staff_id: int | None = None, by: str | None = None) -> CaseCard:
        """Moves the case to the next handling step, with a new deadline (CaseworkError at the last step).
        by: the supervisor pages' user who did it, kept with the event."""
        with self.service.store.writing() as session:
            case, conv = self._case(session, number, open_only=True)
            self._next_step(session, case, staff_id, by=by)
            return self._card(case, conv)

    def resolve(self, number: str, staff_id: int | None, by: str | None = None) -> CaseCard:
        """Closes the case; the adapter then asks the customer to rate the service (rating_request)."""
        with self.service.store.writing() as session:
            return self.resolve_in(session, number, staff_id, by)

    def resolve_in(self, session, number: str, staff_id: int | None, by: str | None = None) -> CaseCard:
        """resolve() inside the caller's transaction (a guided complaint solved on the spot)."""
        case, conv = self._case(session, number, open_only=True)
        case.status, case.closed_at = "closed", utcnow()
        case.assigned_to = case.assigned_to or staff_id
        self._event(session, case, "case_closed", {"staff": staff_id, **({"by": by} if by else {})})
        return self._card(case, conv)

    # -- supervision: what supervisors put on a case (the supervisor pages) ----------------------

    def reassign(self, number: str, staff_id: int, by: str) -> CaseCard:
        """Gives an open case to another staff member (one kefu staff knows)."""
        with self.service.store.writing() as session:
            if session.get(StaffRow, staff_id) is None:
                raise CaseworkError(f"{staff_id} 不是客服人员（kefu staff add 添加）")
            case, conv = self._case(session, number, open_only=True)
            before, case.assigned_to = case.assigned_to, staff_id
            self._event(session, case, "case_reassigned", {"staff": staff_id, "from": before, "by": by})
            return self._card(case, conv)

    def note(self, number: str, by: str, text: str) -> None:
        """Adds a supervisor's note to the case."""
        self._mark(number, "note", by, text)

    def tag(self, number: str, by: str, tag: str) -> None:
        """Tags the case (a short word, e.g. 重点跟进); a tag it already has is not added twice."""
        self._mark(number, "tag", by, tag)

    def mark_reviewed(self, number: str, by: str, text: str = "") -> None:
        """Records that a supervisor has reviewed the case's conversation."""
        self._mark(number, "reviewed", by, text)

    def flag_message(self, number: str, message_id: int, by: str, text: str = "") -> None:
        """Flags one message of the case's conversation, with an optional annotation."""
        self._mark(number, "flag", by, text, message_id)

    def _mark(self, number: str, kind: str, by: str, text: str, message_id: int | None = None) -> None:
        text = text.strip()
        if kind in ("note", "tag") and not text:
            raise CaseworkError("内容不能为空")
        if len(text) > 2000:
            raise CaseworkError("内容太长（最多 2000 字）")
        with self.service.store.writing() as session:
            case, _ = self._case(session, number)
            if message_id is not None:
                message = session.get(MessageRow, message_id)
                if message is None or message.conversation_id != case.conversation_id:
                    raise CaseworkError(f"案件 {case.number} 没有这条消息")
            if kind == "tag" and queries.has_tag(session, case.number, text):
                return
            now = utcnow()
            session.add(CaseMarkRow(case_number=case.number, kind=kind, message_id=message_id, text=text, author=by, at=now))
            session.add(EventRow(conversation_id=case.conversation_id, case_number=case.number, kind=f"case_{kind}",
                                 data={"by": by, **({"message": message_id} if message_id else {})}, at=now))

    def due(self, now: datetime | None = None) -> list[Due]:
        """Finds open, running cases past their deadline: reminds each once, and escalates those still
        untouched a grace period later. Returns what happened, for the adapter to post."""
        now = now or utcnow()
        happened: list[Due] = []
        with self.service.store.writing() as session:
            for case in queries.running_open_cases(session):  # each reminded by whichever worker locks it first
                if case.category not in self.content.case_kinds:
                    continue  # a category the content no longer has: its ladder is gone, staff must close it by hand
                action = overdue(now, aware(case.step_deadline), aware(case.reminded_at), self.grace, case.step,
                                 len(self.content.case_kinds[case.category].handling), case.top_alerted)
                if action is None:
                    continue
                conv = session.get(ConversationRow, case.conversation_id)
                if action == "remind":
                    case.reminded_at = now
                    self._event(session, case, "deadline_reminded", {"step": case.step})
                    happened.append(Due("remind", self._card(case, conv)))
                elif action == "escalate":
                    self._next_step(session, case, None, now)
                    happened.append(Due("escalated", self._card(case, conv)))
                else:
                    case.top_alerted = True
                    self._event(session, case, "deadline_missed_at_top", {"step": case.step})
                    happened.append(Due("top", self._card(case, conv)))
        return happened

    # -- ratings -------------------------------------------------------------------------------

    def rating_request(self, number: str) -> Reply:
        """The message asking the customer to rate a closed case, with 1–5 buttons."""
        texts = self.content.shared.texts
        options = tuple(Option(f"{'★' * score}", f"rate:{number}:{score}") for score in range(1, 6))
        return Reply(render(texts.rate_ask.text, self._values(number)), options)

    def rate(self, number: str, score: int, channel: str, user_key: str) -> Reply:
        """Stores the customer's rating; a low one asks for the reason (rating_reason takes it)."""
        if not 1 <= score <= 5:
            raise CaseworkError("评分须为 1 到 5")
        texts = self.content.shared.texts
        with self.service.store.writing() as session:
            case, conv = self._own_case(session, number, channel, user_key)
            if not ratable(case.status, case.rating):
                raise CaseworkError(self.content.shared.texts.not_ratable.text)
            case.rating = score
            self._event(session, case, "case_rated", {"score": score})
            if not asks_reason(score):
                return Reply(render(texts.rate_thanks.text, self._values(number)))
            if conv.category is None:  # idle: the next typed message is the reason (mid-complaint: the buttons only)
                conv.state, conv.case_number = REASON, number
                session.add(conv)
        reasons = self.content.shared.rating_reasons
        return Reply(render(texts.rate_low_ask.text, self._values(number)),
                     tuple(Option(r, f"reason:{number}:{i}") for i, r in enumerate(reasons)))

    def rating_reason(self, number: str, reason: str, channel: str, user_key: str) -> Reply:
        """Stores why a low rating was given (a chosen reason or the customer's words)."""
        with self.service.store.writing() as session:
            case, conv = self._own_case(session, number, channel, user_key)
            if not reason_wanted(case.rating, case.rating_reason):
                raise CaseworkError(self.content.shared.texts.not_ratable.text)
            case.rating_reason = reason
            if conv.state == REASON:
                conv.state = MENU
                session.add(conv)
            self._event(session, case, "rating_reason", {"reason": reason})
        return Reply(render(self.content.shared.texts.rate_reason_thanks.text, self._values(number)))

    # -- inside --------------------------------------------------------------------------------

    def _own_case(self, session, number: str, channel: str, user_key: str) -> tuple[CaseRow, ConversationRow]:
        """A customer's own case; another's, or none, get the same answer (case numbers are sequential:
        whether someone else's exists is not told)."""
        case = queries.case_by_number(session, number.strip().upper())
        conv = session.get(ConversationRow, case.conversation_id) if case is not None else None
        if case is None or conv is None or (conv.channel, conv.user_key) != (channel, user_key):
            raise CaseworkError(self.content.shared.texts.not_ratable.text)
        return case, conv

    def _case(self, session, number: str, open_only: bool = False) -> tuple[CaseRow, ConversationRow]:
        case = queries.case_by_number(session, number.strip().upper())
        if case is None:
            raise CaseworkError(f"没有编号为 {number} 的案件")
        if open_only and case.status != "open":
            raise CaseworkError(f"案件 {case.number} 已办结")
        return case, session.get(ConversationRow, case.conversation_id)

    def page_actions(self) -> list[tuple[str, CaseCard]]:
        """Closes and escalations made on the supervisor pages (their events carry `by`) in the last day
        that no Telegram process has announced yet: (event kind, the case's card). Each is taken once, so
        the customer is asked to rate and the next role gets its card, as when staff act in chat."""
        since = utcnow() - timedelta(days=1)
        with self.service.store.writing() as session:
            taken = []
            for event in queries.closes_and_escalations(session, since):
                if not event.data.get("by") or event.data.get("announced"):
                    continue
                event.data = {**event.data, "announced": True}  # a new dict: the JSON column is saved when replaced
                session.add(event)
                case, conv = self._case(session, event.case_number)
                taken.append((event.kind, self._card(case, conv)))
            return taken

    def _next_step(self, session, case: CaseRow, staff_id: int | None, now: datetime | None = None,
                   by: str | None = None) -> None:
        ladder = self.content.case_kinds[case.category].handling
        if not can_escalate(case.step, len(ladder)):
            raise CaseworkError(f"案件 {case.number} 已在最后一步（{self.content.shared.roles[case.step_role].name}）")
        now = now or utcnow()
        case.step += 1
        step = ladder[case.step]
        case.step_role, case.step_deadline = step.role, self.service.engine.deadline(now, step)
        case.reminded_at, case.assigned_to, case.paused_at = None, None, None
        self._event(session, case, "step_escalated", {"step": case.step, "role": step.role, "staff": staff_id,
                                                      "deadline": case.step_deadline.isoformat(),
                                                      **({"by": by} if by else {})})

    def _day(self, role: str) -> Day:
        return Day.of(self.content.shared.business_hours, role, self.service.engine.zone)

    def _event(self, session, case: CaseRow, kind: str, data: dict) -> None:
        session.add(case)
        session.add(EventRow(conversation_id=case.conversation_id, case_number=case.number, kind=kind, data=data,
                             at=utcnow()))

    def _card(self, case: CaseRow, conv: ConversationRow) -> CaseCard:
        category = self.content.case_kinds[case.category]
        step = category.handling[case.step]
        facts = tuple((fact.label, str(case.facts[fid])) for fid, fact in category.facts.items() if fid in case.facts)
        shared = self.content.shared.handoff.fact_labels  # facts any case may hold: what was added after it opened
        facts += tuple((label, str(case.facts[fid])) for fid, label in shared.items()
                       if fid in case.facts and fid not in category.facts)
        values = template_values(conv.salutation or "", case.facts, case.number, category=category.name)
        canned = []
        for point in category.answer_points.values():
            try:
                canned.append(render(point.text, values))
            except Exception:  # a point that needs a fact this case lacks is not offered
                continue
        deadline = aware(case.step_deadline)
        return CaseCard(
            case.number, case.category, category.name, case.status, facts, case.step + 1, len(category.handling),
            step.role, self.content.shared.roles[step.role].name, render(step.action.text, values), deadline,
            self.service.engine.local_time(deadline), case.assigned_to, case.paused_at is not None,
            tuple(canned), conv.channel, conv.user_key,
        )

    def _values(self, number: str | None) -> dict:
        return template_values("", case_number=number)


def _member(row: StaffRow) -> StaffMember:
    return StaffMember(row.telegram_id, row.role, row.chat_id, tuple(row.handles or ()))
