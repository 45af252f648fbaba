"""The report's two pictures as inline SVG, drawn here so the page needs no plotting library or
network: a latency histogram with its threshold and observed percentile, and the returns by stage
over simulated time as stacked areas (a cumulative flow diagram: the backlog is the band's height).

Every string from a verdict that ends up in the SVG goes through :func:`esc`.
"""

from __future__ import annotations

import math
from html import escape

from simulators.report.text import format_number

W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 40

# Stages a return passes through, newest arrivals on top of the stack, finished ones at the bottom.
STAGE_ORDER = ["closed", "rejected", "cancelled", "never-shipped", "returned-to-sender",
               "inspected", "received", "delivered", "in-transit", "approved", "requested"]
STAGE_COLOR = {
    "closed": "#2e7d32", "rejected": "#8d6e63", "cancelled": "#a1887f", "never-shipped": "#bcaaa4",
    "returned-to-sender": "#d7ccc8", "inspected": "#00838f", "received": "#0097a7",
    "delivered": "#26a69a", "in-transit": "#42a5f5", "approved": "#7986cb", "requested": "#b39ddb",
}
STALLED_COLORS = ["#c62828", "#e53935", "#ef5350", "#e57373", "#ff8a65"]
OTHER_COLORS = ["#fbc02d", "#9e9d24", "#6d4c41", "#546e7a", "#ab47bc", "#ec407a"]
MAX_POINTS = 400  # points of the timeline drawn; a longer one is thinned evenly
MAX_HOVER = 150  # hover columns (each a <title> with the counts) over the timeline
MAX_BINS = 120  # bars of a histogram
OFF_SCALE = 5  # a threshold more than this many times the data's p99 is drawn off the scale


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks, k = [], 0
    while (t := start + k * step) <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 10))
        k += 1
    return ticks


def numbers(values: object) -> list[float]:
    return sorted(float(v) for v in (values or []) if isinstance(v, int | float) and not isinstance(v, bool)
                  and math.isfinite(v))


def quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted numbers (what the oracle's exact percentiles use)."""
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def histogram(samples: object, *, threshold: float | None, observed: float | None, percentile: object,
              unit: str = "", label: str = "") -> str:
    """An SVG histogram of the samples, the threshold as a dashed red line, the observed
    percentile as a solid one. A long tail is folded into one overflow bar on the right."""
    xs = numbers(samples)
    if not xs:
        return '<p class="muted">No samples: nothing to plot.</p>'
    finite = [v if isinstance(v, int | float) and math.isfinite(v) else None for v in (threshold, observed)]
    threshold, observed = finite
    lo = min(0.0, xs[0])
    core = max(quantile(xs, 0.99), observed if observed is not None else -math.inf)
    # A threshold far above the data would squash it into one bar: it is then only pointed at.
    off_scale = threshold is not None and threshold > lo + OFF_SCALE * (core - lo)
    body = max(core, threshold) if threshold is not None and not off_scale else core
    hi = xs[-1] if xs[-1] <= lo + 1.5 * (body - lo) else lo + 1.2 * (body - lo)  # else fold the tail
    if threshold is not None and not off_scale:
        hi = max(hi, lo + 1.04 * (threshold - lo))
    if hi <= lo:
        hi = lo + 1.0
    ticks = nice_ticks(lo, hi)
    # Bins as fine as the data deserve (about sqrt(n) over its range), however wide the axis.
    per_data = min(40, max(8, math.ceil(math.sqrt(len(xs)))))
    width = (min(xs[-1], hi) - lo) / per_data or (hi - lo) / per_data
    bins = max(1, min(MAX_BINS, math.ceil((hi - lo) / width - 1e-9)))
    width = (hi - lo) / bins
    counts = [0] * bins
    overflow = 0
    for x in xs:
        if x > hi:
            overflow += 1
        else:
            counts[min(bins - 1, int((x - lo) / width))] += 1

    plot_w = W - LEFT - RIGHT - (44 if overflow else 0)
    plot_h = H - TOP - BOTTOM
    ymax = max(max(counts), overflow)
    yticks = [t for t in nice_ticks(0, ymax, 4) if t == int(t)] or [0]
    ytop = max(ymax, yticks[-1])

    def sx(v: float) -> float:
        return LEFT + (v - lo) / (hi - lo) * plot_w

    def sy(n: float) -> float:
        return TOP + plot_h - n / ytop * plot_h

    u = f" {unit}" if unit else ""
    out = [f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" role="img" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{esc(label)} distribution, {len(xs)} samples</title>"]
    for t in yticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{_f(LEFT + plot_w)}" y1="{_f(sy(t))}" y2="{_f(sy(t))}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{_f(sy(t) + 4)}" text-anchor="end">{format_number(int(t))}</text>')
    for t in ticks:
        out.append(f'<text class="tick" x="{_f(sx(t))}" y="{H - BOTTOM + 16}" text-anchor="middle">{esc(format_number(t))}</text>')
    over_threshold = threshold if threshold is not None else math.inf
    for i, n in enumerate(counts):
        if not n:
            continue
        a, b = lo + i * width, lo + (i + 1) * width
        cls = "bar late" if a >= over_threshold else "bar"
        out.append(f'<rect class="{cls}" x="{_f(sx(a) + 0.5)}" y="{_f(sy(n))}" width="{_f(max(sx(b) - sx(a) - 1, 1))}" '
                   f'height="{_f(sy(0) - sy(n))}"><title>{esc(format_number(a))}–{esc(format_number(b))}{esc(u)}: {n}</title></rect>')
    if overflow:
        # The folded tail, stacked: red for the samples over the threshold, blue for the rest.
        x0 = LEFT + plot_w + 12
        late = sum(1 for x in xs if x > hi and x > over_threshold)
        for cls, low, high, n in (("bar", 0, overflow - late, overflow - late), ("bar late", overflow - late, overflow, late)):
            if n:
                what = "over the threshold" if cls == "bar late" else "within the threshold"
                out.append(f'<rect class="{cls}" x="{x0}" y="{_f(sy(high))}" width="28" height="{_f(sy(low) - sy(high))}">'
                           f"<title>over {esc(format_number(hi))}{esc(u)} (up to {esc(format_number(xs[-1]))}), "
                           f"{what}: {n}</title></rect>")
        out.append(f'<text class="tick" x="{x0 + 14}" y="{H - BOTTOM + 16}" text-anchor="middle">&gt;{esc(format_number(hi))}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{_f(LEFT + plot_w)}" y1="{_f(sy(0))}" y2="{_f(sy(0))}"/>')
    pairs = []
    if threshold is not None and not off_scale:
        pairs.append(("threshold", threshold, f"threshold {format_number(threshold)}{u}", TOP - 10))
    if observed is not None:
        pairs.append(("observed", observed, f"p{format_number(percentile)} {format_number(observed)}{u}", TOP + 6))
    for cls, value, text, y in pairs:
        x = sx(min(value, hi))
        anchor = "end" if x > LEFT + plot_w * 0.7 else "start"  # labels sit on two lines: no clash
        dx = -4 if anchor == "end" else 4
        out.append(f'<line class="{cls}" x1="{_f(x)}" x2="{_f(x)}" y1="{TOP - 4}" y2="{_f(sy(0))}"/>'
                   f'<text class="mark {cls}" x="{_f(x + dx)}" y="{y}" text-anchor="{anchor}">{esc(text)}</text>')
    if off_scale:
        out.append(f'<text class="mark threshold" x="{W - RIGHT}" y="{TOP - 10}" text-anchor="end">'
                   f"threshold {esc(format_number(threshold))}{esc(u)} (off the scale) →</text>")
    out.append(f'<text class="axis-label" x="{_f(LEFT + plot_w / 2)}" y="{H - 6}" text-anchor="middle">{esc(label)}{esc(u and f" ({unit})")}</text>'
               f'<text class="axis-label" x="14" y="{_f(TOP + plot_h / 2)}" text-anchor="middle" '
               f'transform="rotate(-90 14 {_f(TOP + plot_h / 2)})">samples</text></svg>')
    return "".join(out)


def stage_colors(stages: list[str]) -> dict[str, str]:
    colors, stalled, other = {}, 0, 0
    for stage in stages:
        if stage in STAGE_COLOR:
            colors[stage] = STAGE_COLOR[stage]
        elif stage.startswith("stalled"):
            colors[stage] = STALLED_COLORS[stalled % len(STALLED_COLORS)]
            stalled += 1
        else:
            colors[stage] = OTHER_COLORS[other % len(OTHER_COLORS)]
            other += 1
    return colors


def ordered_stages(names: set[str]) -> list[str]:
    """Finished stages at the bottom, then stalled ones, then the rest, newest on top."""
    known = [s for s in STAGE_ORDER if s in names]
    stalled = sorted(s for s in names if s.startswith("stalled") and s not in STAGE_ORDER)
    other = sorted(s for s in names if s not in STAGE_ORDER and not s.startswith("stalled"))
    finished = [s for s in known if STAGE_ORDER.index(s) < 5]
    return finished + stalled + other + [s for s in known if s not in finished]


def _thin(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    step = (len(items) - 1) / (limit - 1)
    return [items[round(i * step)] for i in range(limit)]


def timeline_points(timeline: object) -> list[tuple[float, dict[str, int]]]:
    points = []
    for point in timeline or []:
        if not isinstance(point, dict) or not isinstance(point.get("day"), int | float):
            continue
        stages = {str(k): v for k, v in (point.get("stages") or {}).items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and v > 0}
        points.append((float(point["day"]), stages))
    return sorted(points, key=lambda p: p[0])


def stacked_areas(points: list[tuple[float, dict[str, int]]], stages: list[str], colors: dict[str, str]) -> str:
    """Returns by stage over simulated days, stacked (needs at least two points)."""
    points = _thin(points, MAX_POINTS)
    d0, d1 = points[0][0], points[-1][0]
    if d1 <= d0:
        d1 = d0 + 1
    totals = [sum(s.values()) for _, s in points]
    yticks = [t for t in nice_ticks(0, max(max(totals), 1), 5) if t == int(t)] or [0]
    ytop = max(max(totals), yticks[-1], 1)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(d: float) -> float:
        return LEFT + (d - d0) / (d1 - d0) * plot_w

    def sy(n: float) -> float:
        return TOP + plot_h - n / ytop * plot_h

    out = [f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" role="img" xmlns="http://www.w3.org/2000/svg">',
           "<title>Returns by stage over simulated days</title>"]
    for t in yticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_f(sy(t))}" y2="{_f(sy(t))}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{_f(sy(t) + 4)}" text-anchor="end">{format_number(int(t))}</text>')
    for t in nice_ticks(d0, d1, 8):
        out.append(f'<text class="tick" x="{_f(sx(t))}" y="{H - BOTTOM + 16}" text-anchor="middle">{esc(format_number(t))}</text>')
    below = [0.0] * len(points)
    for stage in stages:
        above = [b + s.get(stage, 0) for b, (_, s) in zip(below, points)]
        if above != below:
            top = " ".join(f"{_f(sx(d))},{_f(sy(n))}" for (d, _), n in zip(points, above))
            bottom = " ".join(f"{_f(sx(d))},{_f(sy(n))}" for (d, _), n in reversed(list(zip(points, below))))
            out.append(f'<polygon class="area" fill="{colors[stage]}" points="{top} {bottom}"><title>{esc(stage)}</title></polygon>')
        below = above
    hover = _thin(points, MAX_HOVER)
    for i, (d, s) in enumerate(hover):
        left = sx((hover[i - 1][0] + d) / 2) if i else sx(d)
        right = sx((d + hover[i + 1][0]) / 2) if i + 1 < len(hover) else sx(d)
        detail = ", ".join(f"{name} {format_number(s[name])}" for name in reversed(stages) if s.get(name))
        out.append(f'<rect class="hover" x="{_f(left)}" y="{TOP}" width="{_f(max(right - left, 1))}" height="{plot_h}">'
                   f"<title>day {esc(format_number(d))}: {format_number(sum(s.values()))} returns ({esc(detail or 'none')})</title></rect>")
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_f(sy(0))}" y2="{_f(sy(0))}"/>'
               f'<text class="axis-label" x="{_f(LEFT + plot_w / 2)}" y="{H - 6}" text-anchor="middle">simulated day</text>'
               f'<text class="axis-label" x="14" y="{_f(TOP + plot_h / 2)}" text-anchor="middle" '
               f'transform="rotate(-90 14 {_f(TOP + plot_h / 2)})">returns</text></svg>')
    return "".join(out)


def lines(series: list[tuple[str, str, list[tuple[float, float]]]], *, xlabel: str, ylabel: str, title: str) -> str:
    """Line charts sharing axes: ``series`` is (name, colour, [(x, y), ...]) each; empty ones are skipped."""
    drawn = [(name, color, _thin(sorted(points), MAX_POINTS)) for name, color, points in series if points]
    xs = [x for _, _, pts in drawn for x, _ in pts]
    ys = [y for _, _, pts in drawn for _, y in pts]
    x0, x1 = min(xs), max(xs)
    if x1 <= x0:
        x1 = x0 + 1
    yticks = nice_ticks(0, max(max(ys), 1e-9), 5)
    ytop = max(max(ys), yticks[-1])
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * plot_w

    def sy(v: float) -> float:
        return TOP + plot_h - v / ytop * plot_h

    out = [f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" role="img" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>']
    for t in yticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_f(sy(t))}" y2="{_f(sy(t))}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{_f(sy(t) + 4)}" text-anchor="end">{esc(format_number(t))}</text>')
    for t in nice_ticks(x0, x1, 8):
        out.append(f'<text class="tick" x="{_f(sx(t))}" y="{H - BOTTOM + 16}" text-anchor="middle">{esc(format_number(t))}</text>')
    for name, color, pts in drawn:
        path = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"><title>{esc(name)}</title></polyline>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_f(sy(0))}" y2="{_f(sy(0))}"/>'
               f'<text class="axis-label" x="{_f(LEFT + plot_w / 2)}" y="{H - 6}" text-anchor="middle">{esc(xlabel)}</text>'
               f'<text class="axis-label" x="14" y="{_f(TOP + plot_h / 2)}" text-anchor="middle" '
               f'transform="rotate(-90 14 {_f(TOP + plot_h / 2)})">{esc(ylabel)}</text></svg>')
    return "".join(out)
