"""Charts as inline SVG text: no script, no font or file to fetch, same bytes every run.

Lines for CDFs and time series, side-by-side bars for histograms; the SDK proxy is always
blue and the legacy proxy orange.
"""

from __future__ import annotations

import math
from html import escape

from harness.report.model import Chart, Series

__all__ = ["COLORS", "render_svg"]

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 48, 48
COLORS = {"sdk": "#2563eb", "legacy": "#d97706"}
_PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2")


def _color(series: Series, index: int) -> str:
    name = series.label.split(" ", 1)[0]
    return COLORS.get(name, _PALETTE[index % len(_PALETTE)])


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 10)]
    # the last tick at or beyond ``high``: the axis must hold every point
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _fmt(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _tick_label(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def render_svg(chart: Chart) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    points = [p for s in chart.series for p in s.points]
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] or [0.0, 1.0]
    if chart.kind == "cdf":
        y_low, y_high = 0.0, 1.0
    elif chart.kind == "histogram":
        y_low, y_high = 0.0, max(ys) or 1.0
    else:
        y_low, y_high = min(ys), max(ys)
    x_ticks = _nice_ticks(min(xs), max(xs))
    y_ticks = _nice_ticks(y_low, y_high)
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]
    if chart.kind == "histogram" and len(chart.series[0].points) > 1:
        # bars need room for the last bin
        width = chart.series[0].points[1][0] - chart.series[0].points[0][0]
        x1 = max(x1, max(xs) + width)

    def sx(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    title = escape(chart.title)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{title}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="600">{title}</text>',
    ]
    for tick in x_ticks:
        tx = _fmt(sx(tick))
        out.append(
            f'<line x1="{tx}" y1="{TOP}" x2="{tx}" y2="{TOP + plot_h}" stroke="#e5e7eb"/>'
            f'<text x="{tx}" y="{TOP + plot_h + 14}" text-anchor="middle">'
            f"{_tick_label(tick)}</text>"
        )
    for tick in y_ticks:
        ty = _fmt(sy(tick))
        out.append(
            f'<line x1="{LEFT}" y1="{ty}" x2="{LEFT + plot_w}" y2="{ty}" stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{ty}" text-anchor="end" dominant-baseline="middle">'
            f"{_tick_label(tick)}</text>"
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#9ca3af"/>'
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
        f"{escape(chart.x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(chart.y_label)}</text>'
    )
    count = len(chart.series)
    legend_x = LEFT
    for index, series in enumerate(chart.series):
        color = _color(series, index)
        if chart.kind == "histogram":
            for i, (x, y) in enumerate(series.points):
                nxt = series.points[i + 1][0] if i + 1 < len(series.points) else None
                bin_w = (
                    (sx(nxt) - sx(x)) if nxt is not None else plot_w / max(1, len(series.points))
                )
                bar_w = max(1.0, bin_w / count - 1)
                left = sx(x) + index * (bin_w / count)
                top = sy(y)
                out.append(
                    f'<rect x="{_fmt(left)}" y="{_fmt(top)}" width="{_fmt(bar_w)}" '
                    f'height="{_fmt(TOP + plot_h - top)}" fill="{color}" fill-opacity="0.75"/>'
                )
        else:
            path = " ".join(f"{_fmt(sx(x))},{_fmt(sy(y))}" for x, y in series.points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        # the legend runs in one row under the title, clear of the data
        out.append(
            f'<rect x="{legend_x}" y="28" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 16}" y="38">{escape(series.label)}</text>'
        )
        legend_x += 28 + 7 * len(series.label)
    out.append("</svg>")
    return "\n".join(out)
