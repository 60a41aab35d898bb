"""The campaign page's charts: round time buckets for fast and slow sends, labelled axes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prefsvc.web.admin.charts import MAX_BUCKETS, TICKS, bucket_for, chart

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "bucket", "fmt"),
    [
        (timedelta(seconds=90), timedelta(seconds=1), "%H:%M:%S"),
        (timedelta(minutes=20), timedelta(seconds=10), "%H:%M:%S"),
        (timedelta(hours=3), timedelta(minutes=2), "%H:%M"),
        (timedelta(days=3), timedelta(hours=1), "%d/%m %H:%M"),
        (timedelta(days=90), timedelta(days=1), "%d/%m"),
    ],
)
def test_a_send_gets_round_buckets_and_a_time_format_that_suit_its_length(span, bucket, fmt):
    assert bucket_for(span) == bucket
    drawn = chart([START, START + span / 2, START + span])
    assert drawn.bucket == bucket and drawn.time_format == fmt
    assert drawn.points.count(" ") <= MAX_BUCKETS + 1


def test_many_events_make_at_most_one_step_per_bucket_and_end_at_the_total():
    times = [START + timedelta(milliseconds=7 * i) for i in range(100_000)]
    drawn = chart(times)
    coords = drawn.points.split(" ")
    assert len(coords) <= MAX_BUCKETS + 1
    assert coords[-1].endswith(f",{drawn.PAD:.1f}")  # the top: everything counted
    assert [n for _y, n in drawn.y_ticks] == [0, 50_000, 100_000]
    assert len(drawn.x_ticks) == TICKS
    assert drawn.x_ticks[0][1] == START and drawn.x_ticks[-1][1] == drawn.end >= times[-1]


@pytest.mark.parametrize(
    ("span", "ticks"),
    [(timedelta(milliseconds=800), 2), (timedelta(seconds=2), 3), (timedelta(minutes=5), TICKS)],
)
def test_a_short_send_gets_fewer_time_labels_and_never_two_that_read_the_same(span, ticks):
    drawn = chart([START, START + span])
    labels = [when.strftime(drawn.time_format) for _x, when in drawn.x_ticks]
    assert len(labels) == ticks
    assert len(set(labels)) == ticks


@pytest.mark.parametrize(
    ("span", "kept"), [(timedelta(minutes=5), {0, 2, 4}), (timedelta(0), {0, 1})]
)
def test_a_phone_keeps_the_first_middle_and_last_time_labels(span, kept):
    assert chart([START, START + span]).narrow_ticks == kept
