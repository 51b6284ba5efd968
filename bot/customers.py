"""One customer's personal data on request: everything kept about them (export), its erasure that keeps
anonymous case statistics (erase), and the same erasure for conversations closed long ago (retention)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, SQLModel, select

from bot import audit
from bot.storage.tables import AttachmentRow, CaseRow, ConversationRow, EventRow, InboxRow, MessageRow, aware, utcnow

ERASED = "erased-"  # an erased conversation's user key: erased-<its id>
# Event fields that say how a case went, not who the customer is: kept when the rest is erased.
STATISTICS = {"step", "role", "score", "category", "staff", "deadline"}


def _plain(row: SQLModel, leave: tuple[str, ...] = ()) -> dict[str, Any]:
    data = row.model_dump(exclude=set(leave))
    return {k: (aware(v).isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _conversations(session: Session, user_key: str, channel: str | None) -> list[ConversationRow]:
    query = select(ConversationRow).where(ConversationRow.user_key == user_key)
    if channel:
        query = query.where(ConversationRow.channel == channel)
    return list(session.exec(query.order_by(ConversationRow.id)))


def _updates(session: Session, user_key: str) -> list[InboxRow]:
    """Raw Telegram updates sent by this user (or in their private chat)."""
    def mentions(value: Any) -> bool:
        if isinstance(value, dict):
            for key in ("from", "chat"):
                who = value.get(key)
                if isinstance(who, dict) and str(who.get("id")) == user_key:
                    return True
            return any(mentions(v) for v in value.values())
        if isinstance(value, list):
            return any(mentions(v) for v in value)
        return False

    return [row for row in session.exec(select(InboxRow).order_by(InboxRow.update_id)) if mentions(row.data)]


def export(db: DbEngine, user_key: str, channel: str | None = None) -> dict[str, Any]:
    """Everything kefu keeps about one customer, as plain JSON-ready data; the export is audited."""
    with Session(db) as session, session.begin():
        conversations = []
        for conv in _conversations(session, user_key, channel):
            of = {"conversation_id": conv.id}
            conversations.append({
                **_plain(conv),
                "messages": [_plain(m) for m in session.exec(select(MessageRow).filter_by(**of).order_by(MessageRow.id))],
                "events": [_plain(e) for e in session.exec(select(EventRow).filter_by(**of).order_by(EventRow.id))],
                "cases": [_plain(c) for c in session.exec(select(CaseRow).filter_by(**of).order_by(CaseRow.id))],
                "attachments": [_plain(a) for a in session.exec(select(AttachmentRow).filter_by(**of).order_by(AttachmentRow.id))],
            })
        updates = [_plain(u) for u in _updates(session, user_key)]
        result = {"user_key": user_key, "channel": channel, "exported_at": utcnow().isoformat(),
                  "conversations": conversations, "telegram_updates": updates}
        audit.record(session, "customer_export", user_key, {"conversations": len(conversations), "updates": len(updates)})
    return result


def _anonymise(session: Session, conv: ConversationRow) -> dict[str, int]:
    """Removes a conversation's messages, attachments and facts; its cases keep category, steps,
    times and rating, and its events their kind and time, for statistics."""
    counts = {"messages": 0, "attachments": 0, "cases": 0, "events": 0}
    for table, key in ((MessageRow, "messages"), (AttachmentRow, "attachments")):
        for row in session.exec(select(table).where(table.conversation_id == conv.id)):
            session.delete(row)
            counts[key] += 1
    for case in session.exec(select(CaseRow).where(CaseRow.conversation_id == conv.id)):
        case.waybill, case.contact, case.facts, case.rating_reason = None, None, {}, None
        session.add(case)
        counts["cases"] += 1
    for event in session.exec(select(EventRow).where(EventRow.conversation_id == conv.id)):
        event.data = {k: v for k, v in event.data.items() if k in STATISTICS}
        session.add(event)
        counts["events"] += 1
    conv.user_key, conv.facts, conv.salutation = f"{ERASED}{conv.id}", {}, None
    conv.offered, conv.offered_text, conv.later = [], "", None
    session.add(conv)
    return counts


def erase(db: DbEngine, user_key: str, channel: str | None = None) -> dict[str, int]:
    """Erases one customer's personal data (see _anonymise) and their raw Telegram updates; audited
    with the counts. The customer's next message starts a new conversation."""
    with Session(db) as session, session.begin():
        total = {"conversations": 0, "messages": 0, "attachments": 0, "cases": 0, "events": 0, "updates": 0}
        for conv in _conversations(session, user_key, channel):
            total["conversations"] += 1
            for key, count in _anonymise(session, conv).items():
                total[key] += count
        if channel in (None, "telegram"):
            for row in _updates(session, user_key):
                session.delete(row)
                total["updates"] += 1
        audit.record(session, "customer_erase", user_key, total)
    return total


def purge(db: DbEngine, days: int, now: datetime | None = None, who: str | None = None) -> int:
    """Erases the personal data of conversations idle for `days` whose cases are all closed
    (the retention setting); returns how many, audited when any."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    erased = 0
    with Session(db) as session, session.begin():
        for conv in session.exec(select(ConversationRow).where(ConversationRow.updated_at < cutoff)):
            if conv.user_key.startswith(ERASED):
                continue
            still_open = session.exec(select(CaseRow).where(CaseRow.conversation_id == conv.id,
                                                             CaseRow.status == "open")).first()
            if still_open is None:
                _anonymise(session, conv)
                erased += 1
        for row in session.exec(select(InboxRow).where(InboxRow.status != "pending", InboxRow.received_at < cutoff)):
            session.delete(row)
        if erased:
            audit.record(session, "retention_erase", None, {"conversations": erased, "days": days}, who)
    return erased
