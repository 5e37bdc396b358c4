"""Working-day arithmetic for service level agreements.

Vietnam's civil service works Monday to Friday; public holidays are listed per year from the
Labour Code (Art. 112) and the Prime Minister's published schedules. Days not listed for a
year are treated as working days, so add each year before it starts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

# Non-working days besides weekends. Source: Labour Code 2019 Art. 112 and the government's
# annual holiday notices (Tết and the 30 April / 1 May / 2 September bridges).
HOLIDAYS: dict[str, set[date]] = {
    "vn": {
        date(2026, 1, 1),
        *(date(2026, 2, d) for d in range(16, 21)),
        date(2026, 4, 27),
        date(2026, 4, 30),
        date(2026, 5, 1),
        date(2026, 8, 31),
        date(2026, 9, 1),
        date(2026, 9, 2),
        date(2027, 1, 1),
        *(date(2027, 2, d) for d in range(5, 11)),
        date(2027, 4, 16),
        date(2027, 4, 30),
        date(2027, 5, 3),
        date(2027, 9, 2),
        date(2027, 9, 3),
    },
    "none": set(),
}


def is_working_day(day: date, calendar: str | None = None) -> bool:
    holidays = HOLIDAYS[calendar or settings.SLA_CALENDAR]
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: datetime, days: int, calendar: str | None = None) -> datetime:
    """The moment `days` working days after `start`, at the end of that working day.

    Work received on a non-working day counts from the next working day, as counters do.
    """
    local = timezone.localtime(start)
    day = local.date()
    while not is_working_day(day, calendar):
        day += timedelta(days=1)
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day, calendar):
            remaining -= 1
    end = datetime.combine(day, datetime.max.time().replace(microsecond=0))
    return timezone.make_aware(end, timezone.get_current_timezone())


def working_days_between(start: datetime, end: datetime, calendar: str | None = None) -> int:
    """Working days from start's date (exclusive) to end's date (inclusive); negative if end < start."""
    a, b = timezone.localtime(start).date(), timezone.localtime(end).date()
    sign = 1
    if b < a:
        a, b, sign = b, a, -1
    count = 0
    day = a
    while day < b:
        day += timedelta(days=1)
        if is_working_day(day, calendar):
            count += 1
    return sign * count
