"""Business hours: deadlines that count working time only, so a case opened at 22:30 is promised for
the next morning and its escalation clock does not run overnight.

Pure code. Hours are local (the content's time zone); moments in and out are time-zone aware."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from dialogs.schema import BusinessHours


@dataclass(frozen=True)
class Day:
    """The working part of every day, local time."""

    opens: time
    closes: time
    zone: tzinfo

    @classmethod
    def of(cls, hours: BusinessHours, role: str | None, zone: tzinfo) -> "Day":
        """The working day of a role: its own hours if the content gives them, else the default."""
        own = hours.roles.get(role or "", hours)
        return cls(time.fromisoformat(own.open), time.fromisoformat(own.close), zone)

    def _bounds(self, local: datetime) -> tuple[datetime, datetime]:
        day = local.date()
        return (datetime.combine(day, self.opens, local.tzinfo), datetime.combine(day, self.closes, local.tzinfo))

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after start (a start outside hours counts from the next opening)."""
        left = timedelta(hours=hours)
        moment = start.astimezone(self.zone)
        while True:
            opens, closes = self._bounds(moment)
            if moment < opens:
                moment = opens
            elif moment >= closes:
                moment = self._bounds(moment + timedelta(days=1))[0]
                continue
            if moment + left <= closes:
                return (moment + left).astimezone(start.tzinfo)
            left -= closes - moment
            moment = self._bounds(moment + timedelta(days=1))[0]

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from start to end (zero when end is not later)."""
        total = timedelta()
        moment, end = start.astimezone(self.zone), end.astimezone(self.zone)
        while moment < end:
            opens, closes = self._bounds(moment)
            total += max(timedelta(), min(end, closes) - max(moment, opens))
            moment = self._bounds(moment + timedelta(days=1))[0]
        return total

    def is_open(self, moment: datetime) -> bool:
        opens, closes = self._bounds(moment.astimezone(self.zone))
        return opens <= moment < closes
