"""The campaign page's charts: running totals laid out as inline SVG, no script needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Chart:
    """A cumulative line over time, laid out for an inline SVG of ``WIDTH`` × ``HEIGHT``."""

    total: int
    points: str
    start: datetime | None
    end: datetime | None
    WIDTH = 600
    HEIGHT = 160
    PAD = 8

    @property
    def time_format(self) -> str:
        """Times of day for a short campaign; dates too once it spans more than a day."""
        if self.start and self.end and self.end - self.start > timedelta(days=1):
            return "%d/%m %H:%M"
        return "%H:%M:%S"


def chart(times: list[datetime], span: tuple[datetime, datetime] | None = None) -> Chart:
    """Lay out the running total of events as SVG points over ``span`` (shared by all charts)."""
    if not times:
        return Chart(0, "", None, None)
    times = sorted(times)
    start, end = span or (times[0], times[-1])
    seconds = (end - start).total_seconds() or 1.0
    width, height, pad = Chart.WIDTH, Chart.HEIGHT, Chart.PAD
    total = len(times)

    def x(when: datetime) -> float:
        return pad + (width - 2 * pad) * (when - start).total_seconds() / seconds

    def y(n: int) -> float:
        return height - pad - (height - 2 * pad) * n / total

    coords = [(pad, y(0))]
    for n, when in enumerate(times, start=1):
        coords += [(x(when), y(n - 1)), (x(when), y(n))]  # a step: the total jumps at each event
    coords.append((width - pad, y(total)))
    return Chart(total, " ".join(f"{a:.1f},{b:.1f}" for a, b in coords), start, end)
