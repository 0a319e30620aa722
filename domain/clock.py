"""The business clock: the one definition of the business time zone, "now" and "today".

Business days (payment months, contract terms, bans, the day of a death) are Guangdong's
calendar days: China Standard Time, UTC+08:00 all year (no daylight saving since 1991), so a
fixed offset is exact for every date the ledger holds and needs no time-zone database. Event
timestamps are the library's own (UTC); only business days are read on this clock.
"""

from __future__ import annotations

import datetime as dt

#: China Standard Time (中国标准时间), named as the IANA database names the zone.
BUSINESS_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def business_date(moment: dt.datetime) -> dt.date:
    """The business day a moment falls on."""
    return moment.astimezone(BUSINESS_TZ).date()


class Clock:
    """What time it is for the ledger's rules: the system's time, in the business time zone.

    The application services read it; the aggregates are handed ``now`` or ``today`` by them
    and never read a clock themselves."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(BUSINESS_TZ)

    def today(self) -> dt.date:
        return business_date(self.now())


class SetClock(Clock):
    """A clock that shows the moment it was last set to: a simulated history or an import of
    dated records, written as if each step happened on its own date."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment

    def set(self, moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is None:
            raise ValueError("a business moment needs a time zone")
        self.moment = moment
        return moment

    def at(self, day: dt.date, hour: int = 10) -> dt.datetime:
        """Set the clock to ``hour`` o'clock business time on ``day``."""
        return self.set(dt.datetime.combine(day, dt.time(hour), BUSINESS_TZ))
