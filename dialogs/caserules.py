"""The rules of a case once it is open, as pure decisions (the storage and the channels apply them): what a
missed deadline calls for, how waiting on the customer stops the clock, and when a rating is taken."""

from __future__ import annotations

from datetime import datetime, timedelta

from dialogs.hours import Day

LOW_RATING = 2  # a rating at or below this asks for the reason and alerts the supervisors


def overdue(now: datetime, deadline: datetime, reminded_at: datetime | None, grace: timedelta, step: int,
            steps: int, top_alerted: bool) -> str | None:
    """What a running case's deadline calls for now: None (not yet, or nothing more to do), "remind" (the
    first time it is missed), "escalate" (still untouched a grace period after the reminder, and a next
    step exists) or "top" (the same at the last step, said once)."""
    if now < deadline:
        return None
    if reminded_at is None:
        return "remind"
    if now < reminded_at + grace:
        return None
    if step + 1 < steps:
        return "escalate"
    return None if top_alerted else "top"


def resumed_deadline(day: Day, deadline: datetime, paused_at: datetime, now: datetime) -> datetime:
    """The step's deadline once the customer answers: the working time spent waiting on them is given back."""
    return day.add(deadline, day.between(paused_at, now).total_seconds() / 3600)


def can_escalate(step: int, steps: int) -> bool:
    return step + 1 < steps


def ratable(status: str, rating: int | None) -> bool:
    """A rating is taken once, for a closed case: a forged or repeated press changes nothing."""
    return status == "closed" and rating is None


def asks_reason(score: int) -> bool:
    return score <= LOW_RATING


def reason_wanted(rating: int | None, reason: str | None) -> bool:
    """A reason follows a low rating, once."""
    return rating is not None and rating <= LOW_RATING and reason is None
