"""One customer's personal data on request: everything kept about them (export), its erasure that keeps
anonymous case statistics (erase), and the same erasure for conversations closed long ago (retention)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, SQLModel

from bot import audit
from bot.storage import queries
from bot.storage.tables import AttachmentRow, CaseRow, ConversationRow, EventRow, InboxRow, MessageRow, aware, utcnow

ERASED = "erased-"  # an erased conversation's user key: erased-<its id>
# Event fields that say how a case went, not who the customer is: kept when the rest is erased.
STATISTICS = {"step", "role", "score", "category", "staff", "deadline"}
# What an export holds of each conversation, by key.
KEPT = {"messages": MessageRow, "events": EventRow, "cases": CaseRow, "attachments": AttachmentRow}


def _plain(row: SQLModel, leave: tuple[str, ...] = ()) -> dict[str, Any]:
    data = row.model_dump(exclude=set(leave))
    return {k: (aware(v).isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


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

    return [row for row in queries.telegram_updates(session) if mentions(row.data)]


def export(db: DbEngine, user_key: str, channel: str | None = None) -> dict[str, Any]:
    """Everything kefu keeps about one customer, as plain JSON-ready data; the export is audited."""
    with Session(db) as session, session.begin():
        conversations = []
        for conv in queries.conversations_of(session, user_key, channel):
            conversations.append({
                **_plain(conv),
                **{key: [_plain(row) for row in queries.kept_of(session, table, conv.id)] for key, table in KEPT.items()},
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
        for row in queries.kept_of(session, table, conv.id):
            session.delete(row)
            counts[key] += 1
    for case in queries.kept_of(session, CaseRow, conv.id):
        case.waybill, case.contact, case.facts, case.rating_reason = None, None, {}, None
        session.add(case)
        counts["cases"] += 1
    for event in queries.kept_of(session, EventRow, conv.id):
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
        for conv in queries.conversations_of(session, user_key, channel):
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
        for conv in queries.idle_conversations(session, cutoff):
            if conv.user_key.startswith(ERASED):
                continue
            if queries.latest_open_case(session, conv.id) is None:
                _anonymise(session, conv)
                erased += 1
        for row in queries.handled_updates(session, cutoff):
            session.delete(row)
        if erased:
            audit.record(session, "retention_erase", None, {"conversations": erased, "days": days}, who)
    return erased
