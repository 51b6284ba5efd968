"""The audit log: who exported, erased or removed whose data, and when (never the data itself)."""

from __future__ import annotations

import getpass

from sqlmodel import Session

from bot.storage.tables import AuditRow, utcnow


def actor() -> str:
    """The operating-system user running the command (kefu commands run on the server, by its operators)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def record(session: Session, action: str, subject: str | None, detail: dict | None = None, who: str | None = None) -> None:
    """Adds one audit entry to the caller's transaction."""
    session.add(AuditRow(action=action, subject=subject, actor=who or actor(), detail=detail or {}, at=utcnow()))

