from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefsvc.consent import window

BRUSSELS = ZoneInfo("Europe/Brussels")


def test_window_is_open_the_day_before_expiry_and_closed_on_the_day():
    anchor = date(2021, 6, 15)
    assert window.expires_on(anchor, 5) == date(2026, 6, 15)
    assert window.is_open(anchor, 5, date(2026, 6, 14))
    assert not window.is_open(anchor, 5, date(2026, 6, 15))
    assert not window.is_open(anchor, 5, date(2026, 6, 16))


def test_anchor_on_29_february_expires_on_28_february():
    assert window.expires_on(date(2024, 2, 29), 5) == date(2029, 2, 28)
    assert window.is_open(date(2024, 2, 29), 5, date(2029, 2, 27))
    assert not window.is_open(date(2024, 2, 29), 5, date(2029, 2, 28))


def test_anchor_on_29_february_into_a_leap_year_keeps_the_day():
    assert window.expires_on(date(2024, 2, 29), 4) == date(2028, 2, 29)


def test_brussels_date_differs_from_utc_just_before_midnight():
    late_utc = datetime(2026, 6, 14, 22, 30, tzinfo=UTC)  # 00:30 on the 15th in Brussels
    assert window.local_today(late_utc, BRUSSELS) == date(2026, 6, 15)
    assert window.local_today(late_utc, ZoneInfo("UTC")) == date(2026, 6, 14)


def test_anchor_never_moves_backwards():
    assert window.later_anchor(date(2025, 1, 1), date(2020, 1, 1)) == date(2025, 1, 1)
    assert window.later_anchor(date(2020, 1, 1), date(2025, 1, 1)) == date(2025, 1, 1)
    assert window.later_anchor(None, date(2020, 1, 1)) == date(2020, 1, 1)
    assert window.later_anchor(date(2020, 1, 1), None) == date(2020, 1, 1)


@pytest.mark.parametrize(
    "on", [date(2029, 2, 28), date(2029, 3, 1), date(2028, 2, 29), date(2026, 1, 1)]
)
def test_last_expired_anchor_around_leap_days(on):
    threshold = window.last_expired_anchor(on, 5)
    assert not window.is_open(threshold, 5, on)
    assert window.is_open(threshold + timedelta(days=1), 5, on)


@given(
    anchor=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
    on=st.dates(min_value=date(1995, 1, 1), max_value=date(2095, 12, 31)),
    years=st.integers(min_value=1, max_value=10),
)
def test_threshold_comparison_agrees_with_window_rule(anchor, on, years):
    expired_by_threshold = anchor <= window.last_expired_anchor(on, years)
    assert expired_by_threshold == (not window.is_open(anchor, years, on))
