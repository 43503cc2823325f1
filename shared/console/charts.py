"""Small SVG charts with numbers on both axes, written on the server: pure functions, text in, text out.

    bars(["12:00", "13:00"], [("replies", [3, 1]), ("posts", [0, 1])], title="per hour")
    lines([("eval loss", [(100, 2.2), (200, 1.7)])], x_label="step", y_label="loss")

The SVG goes inline in the page (no JavaScript, no files, works offline); its
``viewBox`` lets it shrink to a phone's width. Every piece of text is escaped.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 60     # room for the axes' numbers, their label and the legend
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
MAX_X_LABELS = 8


def nice_ticks(low, high, count=5, whole=False):
    """About ``count`` round numbers (steps of 1, 2 or 5 times a power of ten) from below
    ``low`` to above ``high``; ``whole``: steps of at least 1 (counts)."""
    if not math.isfinite(low) or not math.isfinite(high):
        low, high = 0.0, 1.0
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1, round(step))
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def number(value):
    """A tick label: integers without decimals, others with as few as they need."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def bars(labels, series, title="", y_label="", ticks=None):
    """Stacked bars, one per label, one colour per (name, values) series, with a legend.
    ``ticks``: the (index, text) pairs to write under the x axis (default: every few labels)."""
    n = len(labels)
    totals = [sum(values[i] for _, values in series) for i in range(n)]
    y_ticks = nice_ticks(0, max(totals + [1]), whole=True)
    top = y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, n)
    parts = _frame(title, y_label, y_ticks, lambda v: TOP + plot_h * (1 - v / top))
    for i in range(n):
        base = 0
        for k, (name, values) in enumerate(series):
            value = values[i]
            if value:
                y0, y1 = TOP + plot_h * (1 - base / top), TOP + plot_h * (1 - (base + value) / top)
                parts.append(f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{y1:.1f}" '
                             f'width="{max(slot * 0.8, 0.5):.1f}" height="{y0 - y1:.1f}" '
                             f'fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(str(labels[i]))}: '
                             f'{value} {escape(name)}</title></rect>')
                base += value
    if ticks is None:
        every = max(1, math.ceil(n / MAX_X_LABELS))
        ticks = [(i, labels[i]) for i in range(0, n, every)]
    for i, text in ticks:
        x = LEFT + i * slot
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" stroke="#333"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{escape(str(text))}</text>')
    parts += _legend([name for name, _ in series])
    return _svg(parts, title)


def lines(series, title="", x_label="", y_label=""):
    """Lines through (x, y) points, one colour per (name, points) series, with a legend."""
    points = [p for _, pts in series for p in pts if p[1] is not None and math.isfinite(p[1])]
    xs, ys = [p[0] for p in points] or [0, 1], [p[1] for p in points] or [0, 1]
    y_ticks = nice_ticks(min(ys), max(ys))
    x_ticks = nice_ticks(min(xs), max(xs))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    to_x = lambda v: LEFT + plot_w * (v - x0) / ((x1 - x0) or 1)  # noqa: E731
    to_y = lambda v: TOP + plot_h * (1 - (v - y0) / ((y1 - y0) or 1))  # noqa: E731
    parts = _frame(title, y_label, y_ticks, to_y)
    for value in x_ticks:
        x = to_x(value)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" stroke="#333"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{number(value)}</text>')
    if x_label:
        parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h + 32}" text-anchor="middle">{escape(x_label)}</text>')
    for k, (name, pts) in enumerate(series):
        good = [(x, y) for x, y in pts if y is not None and math.isfinite(y)]
        colour = COLOURS[k % len(COLOURS)]
        if len(good) > 1:
            path = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in good)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in good:
            parts.append(f'<circle cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{escape(name)} {number(y)} at {number(x)}</title></circle>')
    parts += _legend([name for name, _ in series])
    return _svg(parts, title)


def _frame(title, y_label, ticks, to_y):
    plot_w = WIDTH - LEFT - RIGHT
    parts = []
    if title:
        parts.append(f'<text x="{LEFT}" y="16" font-weight="bold">{escape(title)}</text>')
    for value in ticks:
        y = to_y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{number(value)}</text>')
    bottom = to_y(ticks[0])
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom:.1f}" stroke="#333"/>')
    parts.append(f'<line x1="{LEFT}" y1="{bottom:.1f}" x2="{LEFT + plot_w}" y2="{bottom:.1f}" stroke="#333"/>')
    if y_label:
        parts.append(f'<text x="12" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2:.1f}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {TOP + (HEIGHT - TOP - BOTTOM) / 2:.1f})">{escape(y_label)}</text>')
    return parts


def _legend(names):
    parts, x = [], LEFT
    for k, name in enumerate(names):
        parts.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 7}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def _svg(parts, title):
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">'
            + "".join(parts) + "</svg>")
