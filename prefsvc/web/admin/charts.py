"""The campaign page's charts: running totals in time buckets, as inline SVG, no script needed.

Events are counted in buckets of a round length chosen from the span (a second for a send of a
few minutes, an hour for one over days), so a chart has at most ``MAX_BUCKETS`` steps however
many messages went out, and its time axis is labelled at evenly spaced ticks in the format that
suits the bucket (seconds, minutes, days). The labels are HTML under the SVG (the page's CSP
allows no inline styles, and SVG text would stretch with the chart). A short send gets fewer
ticks, never two with the same label; on a phone only the first, middle and last labels show
(``narrow_ticks``), as five side by side would overlap.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_BUCKETS = 120
TICKS = 5
# Round bucket lengths, in seconds: 1 s ... 1 week.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
STEPS += (86400, 172800, 604800)


@dataclass(frozen=True)
class Chart:
    """A cumulative line over time, laid out for an inline SVG of ``WIDTH`` × ``HEIGHT``."""

    total: int
    points: str
    start: datetime | None
    end: datetime | None
    bucket: timedelta = timedelta(seconds=1)
    # Evenly spaced: (x in SVG units, the time there) and (y in SVG units, the count there).
    x_ticks: list[tuple[float, datetime]] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)
    WIDTH = 600
    HEIGHT = 160
    PAD = 8

    @property
    def time_format(self) -> str:
        """Seconds for buckets under a minute, dates once the span passes a day."""
        long = self.start and self.end and self.end - self.start > timedelta(days=1)
        if self.bucket >= timedelta(days=1):
            return "%d/%m"
        if long:
            return "%d/%m %H:%M"
        if self.bucket < timedelta(minutes=1):
            return "%H:%M:%S"
        return "%H:%M"

    @property
    def bucket_seconds(self) -> int:
        return int(self.bucket.total_seconds())

    @property
    def narrow_ticks(self) -> frozenset[int]:
        """Indexes of the time labels kept on a narrow screen: first, middle and last."""
        last = len(self.x_ticks) - 1
        return frozenset({0, last // 2, last}) if last % 2 == 0 else frozenset({0, last})


def bucket_for(span: timedelta) -> timedelta:
    """Return the smallest round bucket that splits ``span`` into at most MAX_BUCKETS."""
    seconds = span.total_seconds()
    for step in STEPS:
        if seconds / step <= MAX_BUCKETS:
            return timedelta(seconds=step)
    return timedelta(seconds=STEPS[-1])


def chart(times: list[datetime], span: tuple[datetime, datetime] | None = None) -> Chart:
    """Lay out the running total of events, per bucket, as SVG points over ``span``."""
    if not times:
        return Chart(0, "", None, None)
    times = sorted(times)
    start, end = span or (times[0], times[-1])
    bucket = bucket_for(end - start)
    buckets = max(1, -(-int((end - start).total_seconds()) // bucket_seconds(bucket)))
    seconds = buckets * bucket.total_seconds()
    width, height, pad = Chart.WIDTH, Chart.HEIGHT, Chart.PAD
    total = len(times)

    def x(offset: float) -> float:
        return pad + (width - 2 * pad) * offset / seconds

    def y(n: int) -> float:
        return height - pad - (height - 2 * pad) * n / total

    coords = [(x(0), y(0))]
    for i in range(1, buckets + 1):
        done = bisect_right(times, start + i * bucket) if i < buckets else total
        coords.append((x(i * bucket.total_seconds()), y(done)))
    # evenly spaced at least a bucket apart, so no two labels read the same (a 1 s send: 2)
    ticks = TICKS if buckets >= TICKS - 1 else (3 if buckets >= 2 else 2)
    x_ticks = [
        (x(seconds * k / (ticks - 1)), start + timedelta(seconds=seconds * k / (ticks - 1)))
        for k in range(ticks)
    ]
    y_ticks = [(y(n), n) for n in sorted({0, total // 2, total})]
    return Chart(
        total,
        " ".join(f"{a:.1f},{b:.1f}" for a, b in coords),
        start,
        start + buckets * bucket,
        bucket,
        x_ticks,
        y_ticks,
    )


def bucket_seconds(bucket: timedelta) -> int:
    return int(bucket.total_seconds())
