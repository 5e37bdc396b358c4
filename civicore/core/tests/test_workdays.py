from __future__ import annotations

import datetime as dt

from django.utils import timezone

from civicore.core.workdays import add_working_days, working_days_between


def _at(y, m, d, h=10):
    return dt.datetime(y, m, d, h, tzinfo=timezone.get_current_timezone())


def test_weekends_are_skipped():
    # Friday 2026-11-27 + 3 working days = Wednesday 2026-12-02.
    assert add_working_days(_at(2026, 11, 27), 3).date() == dt.date(2026, 12, 2)


def test_received_on_a_weekend_counts_from_monday():
    assert add_working_days(_at(2026, 11, 28), 1).date() == dt.date(2026, 12, 1)


def test_public_holidays_are_skipped():
    # 2026-04-29 (Wed) + 2: 30/4 and 1/5 are holidays, then the weekend -> Tuesday 5 May.
    assert add_working_days(_at(2026, 4, 29), 2).date() == dt.date(2026, 5, 5)


def test_working_days_between():
    assert working_days_between(_at(2026, 11, 27), _at(2026, 12, 4)) == 5
    assert working_days_between(_at(2026, 12, 4), _at(2026, 11, 27)) == -5
