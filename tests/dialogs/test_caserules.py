"""The case rules as pure decisions (dialogs/caserules.py): no database, no clock but the one given."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dialogs.caserules import asks_reason, overdue, ratable, reason_wanted, resumed_deadline
from dialogs.hours import Day

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, a Wednesday
GRACE = timedelta(hours=2)


@pytest.mark.parametrize("now, reminded, step, top_alerted, expected", [
    (T0 - timedelta(minutes=1), None, 0, False, None),  # not yet due
    (T0, None, 0, False, "remind"),  # missed: reminded first
    (T0 + timedelta(hours=1), T0, 0, False, None),  # reminded, within the grace period
    (T0 + GRACE, T0, 0, False, "escalate"),  # untouched after the grace period: the next step
    (T0 + GRACE, T0, 2, False, "top"),  # the last step: the supervisors are told
    (T0 + GRACE, T0, 2, True, None),  # ... once
])
def test_a_missed_deadline_reminds_then_escalates_then_alerts_once(now, reminded, step, top_alerted, expected):
    assert overdue(now, T0, reminded, GRACE, step, 3, top_alerted) == expected


def test_waiting_on_the_customer_gives_the_working_time_back():
    from dialogs.content import load_content

    content = load_content()
    day = Day.of(content.shared.business_hours, None, timezone(timedelta(hours=8)))
    deadline = day.add(T0, 4)
    resumed = resumed_deadline(day, deadline, T0, T0 + timedelta(hours=1))
    assert resumed - deadline == timedelta(hours=1)  # an hour within working hours, given back whole


def test_a_rating_is_taken_once_for_a_closed_case_and_a_reason_once_after_a_low_one():
    assert ratable("closed", None) and not ratable("open", None) and not ratable("closed", 4)
    assert asks_reason(1) and asks_reason(2) and not asks_reason(3)
    assert reason_wanted(2, None) and not reason_wanted(2, "太慢") and not reason_wanted(5, None)
    assert not reason_wanted(None, None)
