"""NPS over time as an inline SVG line chart's geometry: one point per period, with its
margin-of-error band as a vertical bar. Pure: the template draws what this computes; the
values stay in the table beside it, so nothing depends on colour or on seeing the chart."""

from dataclasses import dataclass

WIDTH = 640
HEIGHT = 220
MARGIN = 36
#: NPS runs from −100 to 100.
LOW, HIGH = -100.0, 100.0


@dataclass(frozen=True, slots=True)
class ChartPoint:
    label: str
    nps: float
    x: float
    y: float
    #: The band's ends (y of nps + margin, nps − margin), clipped to the axis.
    band_top: float
    band_bottom: float


@dataclass(frozen=True, slots=True)
class Chart:
    points: list[ChartPoint]
    #: The y of NPS 0 (the axis line).
    zero: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _y(value: float) -> float:
    clipped = max(LOW, min(HIGH, value))
    return MARGIN + (HIGH - clipped) / (HIGH - LOW) * (HEIGHT - 2 * MARGIN)


def nps_chart(series: list[tuple[str, float | None, float | None]]) -> Chart:
    """`series`: (period label, NPS or None, margin of error or None), oldest first. Periods
    without responses (NPS None) are left out of the line."""
    known = [(label, nps, moe or 0.0) for label, nps, moe in series if nps is not None]
    step = (WIDTH - 2 * MARGIN) / max(1, len(known) - 1)
    points = [
        ChartPoint(
            label=label,
            nps=nps,
            x=MARGIN + (i * step if len(known) > 1 else (WIDTH - 2 * MARGIN) / 2),
            y=_y(nps),
            band_top=_y(nps + moe),
            band_bottom=_y(nps - moe),
        )
        for i, (label, nps, moe) in enumerate(known)
    ]
    return Chart(points=points, zero=_y(0.0))
