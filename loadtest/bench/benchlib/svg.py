"""Dependency-free SVG charts: grouped bars and lines, linear or log scale.

Plain SVG keeps the committed charts readable on GitHub and diffable, and the bench free of
plotting libraries.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 900, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 240, 40, 60
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#7f7f7f"]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] on a linear axis."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (both > 0)."""
    lo_exp = math.floor(math.log10(lo))
    hi_exp = math.ceil(math.log10(hi))
    if hi_exp == lo_exp:
        hi_exp += 1
    return [10.0**e for e in range(lo_exp, hi_exp + 1)]


def fmt(value: float) -> str:
    """Short axis label: 1.5k, 200k, 2M, 0.05."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool) -> None:
        self.log = log
        if log:
            lo = max(lo, 1e-3)
            hi = max(hi, lo * 10)
            self.ticks = log_ticks(lo, hi)
        else:
            self.ticks = nice_ticks(min(lo, 0.0), hi)
        self.lo, self.hi = self.ticks[0], self.ticks[-1]

    def frac(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            return (math.log10(value) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (value - self.lo) / (self.hi - self.lo)


def _frame(title: str, y_label: str, x_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<text x="16" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + (HEIGHT - TOP - BOTTOM) / 2})">{escape(y_label)}</text>',
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
        f'{escape(x_label)}</text>',
    ]


def _y_axis(axis: _Axis) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    out = []
    for tick in axis.ticks:
        y = TOP + plot_h * (1 - axis.frac(tick))
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(tick)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>')
    return out


def _hline(axis: _Axis, value: float, label: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    y = TOP + plot_h * (1 - min(max(axis.frac(value), 0.0), 1.0))
    return [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c00" '
        f'stroke-dasharray="6 4"/>',
        f'<text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#c00">{escape(label)}</text>',
    ]


def _legend(names: list[str], colors: list[str], top: float = TOP + 30) -> list[str]:
    out = []
    for i, (name, color) in enumerate(zip(names, colors)):
        y = top + 18 * i
        out.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{y - 9}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 28}" y="{y + 1}">{escape(name)}</text>')
    return out


def bar_chart(
    title: str,
    categories: list[str],
    series: list[tuple[str, list[float | None]]],
    y_label: str,
    log: bool = False,
    threshold: tuple[float, str] | None = None,
    colors: list[str] | None = None,
) -> str:
    """Grouped bars: one group per category, one bar per series; None leaves a gap marked n/a.

    ``colors`` (one per series) keeps a series' colour the same across charts.
    """
    values = [v for _, vs in series for v in vs if v is not None and (v > 0 or not log)]
    hi = max(values + ([threshold[0]] if threshold else []), default=1.0)
    lo = min(values + ([threshold[0]] if threshold else []), default=1.0)
    axis = _Axis(lo if log else 0.0, hi * 1.05, log)
    out = _frame(title, y_label, "") + _y_axis(axis)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    colors = colors or [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    # Narrow bars get their value written upwards, so neighbouring labels do not overlap.
    upright = bar_w < 26
    for c, category in enumerate(categories):
        x0 = LEFT + group_w * c + group_w * 0.1
        out.append(f'<text x="{LEFT + group_w * (c + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                   f'text-anchor="middle">{escape(category)}</text>')
        for s, (_name, vs) in enumerate(series):
            value = vs[c] if c < len(vs) else None
            x = x0 + bar_w * s
            if value is None:
                out.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM - 4}" '
                           f'text-anchor="middle" font-size="9" fill="#888">n/a</text>')
                continue
            h = plot_h * min(max(axis.frac(value), 0.0), 1.0)
            out.append(f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{bar_w * 0.92:.1f}" '
                       f'height="{h:.1f}" fill="{colors[s]}"><title>{escape(_name)}: {value:g}</title></rect>')
            lx, ly = x + bar_w * 0.46, HEIGHT - BOTTOM - h - 3
            if upright:
                out.append(f'<text x="{lx + 3:.1f}" y="{ly:.1f}" font-size="9" '
                           f'transform="rotate(-90 {lx + 3:.1f} {ly:.1f})">{fmt(value)}</text>')
            else:
                out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="9">{fmt(value)}</text>')
    if threshold:
        out += _hline(axis, *threshold)
    out += _legend([name for name, _ in series], colors)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def line_chart(
    title: str,
    series: list[tuple[str, list[tuple[float, float]]]],
    x_label: str,
    y_label: str,
    log_y: bool = False,
    log_x: bool = False,
    threshold: tuple[float, str] | None = None,
    markers: bool = False,
    colors: list[str] | None = None,
) -> str:
    """Lines through (x, y) points, one per series; series without points stay off the legend."""
    xs = [x for _, pts in series for x, _ in pts if x > 0 or not log_x]
    ys = [y for _, pts in series for _, y in pts if y > 0 or not log_y]
    if threshold:
        ys.append(threshold[0])
    x_axis = _Axis(min(xs, default=0.0), max(xs, default=1.0), log_x)
    y_axis = _Axis(min(ys, default=0.0), max(ys, default=1.0) * 1.05, log_y)
    out = _frame(title, y_label, x_label) + _y_axis(y_axis)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    for tick in x_axis.ticks:
        x = LEFT + plot_w * x_axis.frac(tick)
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{fmt(tick)}</text>')
    colors = colors or [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for (_name, pts), color in zip(series, colors):
        coords = [
            (LEFT + plot_w * x_axis.frac(x), TOP + plot_h * (1 - min(max(y_axis.frac(y), 0.0), 1.0)))
            for x, y in pts
            if (x > 0 or not log_x) and (y > 0 or not log_y)
        ]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        if markers:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords]
    if threshold:
        out += _hline(y_axis, *threshold)
    shown = [(name, color) for (name, pts), color in zip(series, colors) if pts]
    out += _legend([name for name, _ in shown], [color for _, color in shown])
    out.append("</svg>")
    return "\n".join(out) + "\n"
