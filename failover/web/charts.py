"""Small inline SVG line charts for reports: no JavaScript, the same markup in the browser and in the PDF.

Series are ``(x, y)`` points with ``y`` a share between 0 and 1; the chart
draws them as step lines (acknowledgements over time) or plain lines
(rates from drill to drill) with a legend. Labels are escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

COLOURS = ("#1f6feb", "#d9480f", "#2f9e44", "#9c36b5", "#e67700", "#0c8599", "#c2255c", "#5c940d")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 150, 12, 34


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_label: str,
    x_max: float | None = None,
    steps: bool = True,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    title: str = "",
) -> Markup:
    """An SVG chart of ``series`` (label -> points, y in 0..1); ``steps`` draws step lines that run to ``x_max``."""
    x_top = x_max if x_max is not None else max((x for points in series.values() for x, _ in points), default=1.0)
    x_top = x_top if x_top > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + plot_w * min(max(x, 0.0), x_top) / x_top, 1)

    def py(y: float) -> float:
        return round(TOP + plot_h * (1 - min(max(y, 0.0), 1.0)), 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title or x_label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>',
    ]
    for share in (0.25, 0.5, 0.75, 1.0):
        y = py(share)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + plot_w}" y2="{y}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4}" font-size="10" text-anchor="end">{int(share * 100)}%</text>')
    parts.append(f'<text x="{LEFT - 4}" y="{py(0) + 4}" font-size="10" text-anchor="end">0%</text>')
    ticks = x_ticks if x_ticks is not None else [(x_top * i / 4, _duration(x_top * i / 4)) for i in range(5)]
    for x, label in ticks:
        parts.append(
            f'<text x="{px(x)}" y="{HEIGHT - BOTTOM + 14}" font-size="10" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle">{escape(x_label)}</text>'
    )
    for index, (label, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = _step_coords(points, x_top) if steps else list(points)
        if coords:
            path = " ".join(f"{px(x)},{py(y)}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
            if not steps:
                parts.extend(f'<circle cx="{px(x)}" cy="{py(y)}" r="3" fill="{colour}"/>' for x, y in coords)
        legend_y = TOP + 14 * index + 8
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{legend_y - 7}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 24}" y="{legend_y + 2}" font-size="11">{escape(label[:22])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _step_coords(points: Sequence[tuple[float, float]], x_top: float) -> list[tuple[float, float]]:
    coords: list[tuple[float, float]] = []
    for x, y in points:
        if coords:
            coords.append((x, coords[-1][1]))
        coords.append((x, y))
    if coords:
        coords.append((x_top, coords[-1][1]))
    return coords


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{int(round(seconds))}s"
    if seconds < 7200:
        return f"{int(round(seconds / 60))}m"
    return f"{seconds / 3600:.1f}h"
