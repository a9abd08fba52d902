"""Hand-written SVG charts (standard library only): line charts with whiskers, grouped bars, stacked bars.

Every chart has a title, labelled axes with "nice" ticks and a legend; the output is a self-contained SVG
string that renders the same in a browser and on GitHub.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac"]
FONT = "font-family=\"Helvetica, Arial, sans-serif\""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (lo is usually 0)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v < hi + step * 0.999:
        ticks.append(round(v, 10))
        v += step
    return ticks


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.parts: list[str] = []

    def add(self, s: str):
        self.parts.append(s)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", rotate=None, fill="#222"):
        tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}" {FONT}{tr}>{escape(str(s))}</text>')

    def line(self, x1, y1, x2, y2, stroke="#222", width=1.0, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                 f'stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, fill, stroke="none", title=None):
        t = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{fill}" stroke="{stroke}">{t}</rect>')

    def polyline(self, pts, stroke, width=2.0, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        p = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        self.add(f'<polyline points="{p}" fill="none" stroke="{stroke}" stroke-width="{width}"{d}/>')

    def circle(self, x, y, r, fill, title=None):
        t = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}">{t}</circle>')

    def svg(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}">')
        bg = f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="white"/>'
        return "\n".join([head, bg] + self.parts + ["</svg>", ""])


def _axes(c: Canvas, left, top, right, bottom, ticks, ypix, y_label, title):
    """Grid lines and labels at `ticks`, the two axes, the axis label and the title; returns `ypix`."""
    for t in ticks:
        y = ypix(t)
        c.line(left, y, right, y, stroke="#e4e4e4")
        c.text(left - 6, y + 4, fmt_tick(t), size=11, anchor="end")
    c.line(left, top, left, bottom)
    c.line(left, bottom, right, bottom)
    c.text(16, (top + bottom) / 2, y_label, size=12, anchor="middle", rotate=-90)
    c.text(c.width / 2, 20, title, size=14, anchor="middle", weight="bold")
    return ypix


def _frame(c: Canvas, left, top, right, bottom, ymax, y_label, title, ymin=0.0):
    """Axes, horizontal grid and y ticks; returns a function mapping a value to a y pixel."""
    ticks = nice_ticks(ymin, ymax)
    top_val = ticks[-1]
    ph = bottom - top

    def ypix(v):
        return bottom - (v - ymin) / (top_val - ymin) * ph

    return _axes(c, left, top, right, bottom, ticks, ypix, y_label, title)


def _legend(c: Canvas, items, x, y, line_items=False):
    """items: [(label, color, dash)] drawn in a column starting at (x, y)."""
    for i, (label, color, dash) in enumerate(items):
        yy = y + i * 17
        if line_items:
            c.line(x, yy - 4, x + 22, yy - 4, stroke=color, width=2.5, dash=dash)
        else:
            c.rect(x + 4, yy - 10, 12, 12, fill=color)
        c.text(x + 28, yy, label, size=11)


def _log_frame(c: Canvas, left, top, right, bottom, lo, hi, y_label, title):
    """Like _frame, with a logarithmic y axis (ticks 1-2-5 per decade)."""
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [m * 10 ** d for d in range(d0, d1 + 1) for m in (1, 2, 5) if lo / 1.0001 <= m * 10 ** d <= hi * 1.0001]
    a, b = math.log10(lo), math.log10(hi)

    def ypix(v):
        return bottom - (math.log10(max(v, lo)) - a) / (b - a) * (bottom - top)

    return _axes(c, left, top, right, bottom, ticks, ypix, y_label, title)


def line_chart(title: str, x_labels: list[str], series: list[dict], y_label: str, x_label: str = "",
               log_y: bool = False) -> str:
    """series: {label, values: [v or None], lo: [..], hi: [..], color, dash}. Whiskers show lo..hi."""
    legend_w = 190
    c = Canvas(640 + legend_w, 360)
    left, top, right, bottom = 64, 36, 640 - 20, 360 - 52
    allv = [v for s in series for key in ("values", "lo", "hi") for v in (s.get(key) or []) if v]
    ymax = max(allv + [1e-9]) * 1.08
    if log_y and allv:
        lo = 10 ** math.floor(math.log10(min(allv)))
        hi = 10 ** math.ceil(math.log10(max(allv)))
        ypix = _log_frame(c, left, top, right, bottom, lo, hi, y_label + " (log scale)", title)
    else:
        ypix = _frame(c, left, top, right, bottom, ymax, y_label, title)
    n = len(x_labels)
    span = right - left

    def xpix(i):
        return left + span * (i + 0.5) / n

    for i, lab in enumerate(x_labels):
        c.text(xpix(i), bottom + 18, lab, size=12, anchor="middle")
    if x_label:
        c.text((left + right) / 2, bottom + 40, x_label, size=12, anchor="middle")
    for k, s in enumerate(series):
        color = s.get("color", PALETTE[k % len(PALETTE)])
        pts = [(xpix(i), ypix(v)) for i, v in enumerate(s["values"]) if v is not None]
        off = (k - (len(series) - 1) / 2) * 3  # spread whiskers a little so they don't overlap
        if len(pts) > 1:
            c.polyline(pts, color, dash=s.get("dash"))
        for i, v in enumerate(s["values"]):
            if v is None:
                continue
            lo = (s.get("lo") or [None] * n)[i]
            hi = (s.get("hi") or [None] * n)[i]
            if lo is not None and hi is not None and hi > lo * 1.001:
                x = xpix(i) + off
                c.line(x, ypix(lo), x, ypix(hi), stroke=color, width=1.2)
                c.line(x - 3, ypix(lo), x + 3, ypix(lo), stroke=color, width=1.2)
                c.line(x - 3, ypix(hi), x + 3, ypix(hi), stroke=color, width=1.2)
            c.circle(xpix(i), ypix(v), 3.5, color, title=f"{s['label']} @ {x_labels[i]}: {v:.4g}")
    _legend(c, [(s["label"], s.get("color", PALETTE[k % len(PALETTE)]), s.get("dash"))
                for k, s in enumerate(series)], 640, 50, line_items=True)
    return c.svg()


def grouped_bar_chart(title: str, groups: list[str], bar_labels: list[str], values: list[list],
                      y_label: str, reference: float | None = None, value_fmt: str = "{:.2f}",
                      colors: list[str] | None = None) -> str:
    """values[g][b]: bar b of group g (None = missing). A dashed reference line (e.g. 1.0 for speed-ups)."""
    legend_w = 170
    width = max(560, 90 + len(groups) * (len(bar_labels) * 26 + 30)) + legend_w
    c = Canvas(width, 380)
    left, top, right, bottom = 64, 36, width - legend_w - 10, 380 - 60
    vals = [v for row in values for v in row if v is not None]
    ymax = max(vals + [reference or 0, 1e-9]) * 1.12
    ypix = _frame(c, left, top, right, bottom, ymax, y_label, title)
    colors = colors or PALETTE
    gw = (right - left) / max(len(groups), 1)
    bw = min(26, (gw - 16) / max(len(bar_labels), 1))
    for g, glabel in enumerate(groups):
        gx = left + g * gw + (gw - bw * len(bar_labels)) / 2
        for b, blabel in enumerate(bar_labels):
            v = values[g][b]
            if v is None:
                continue
            x = gx + b * bw
            c.rect(x + 1, ypix(v), bw - 2, bottom - ypix(v), fill=colors[b % len(colors)],
                   title=f"{glabel} / {blabel}: {value_fmt.format(v)}")
            c.text(x + bw / 2, ypix(v) - 3, value_fmt.format(v), size=9, anchor="middle")
        for k, line in enumerate(glabel.split("\n")):
            c.text(left + g * gw + gw / 2, bottom + 16 + 14 * k, line, size=11, anchor="middle")
    if reference is not None:
        c.line(left, ypix(reference), right, ypix(reference), stroke="#666", width=1.2, dash="5,4")
    _legend(c, [(lab, colors[b % len(colors)], None) for b, lab in enumerate(bar_labels)], right + 14, 50)
    return c.svg()


def stacked_bar_chart(title: str, groups: list[str], bar_labels: list[str], components: list[str],
                      values: list[list], y_label: str, colors: list[str] | None = None) -> str:
    """values[g][b] = [component values] or None; bars labelled below with bar_labels, groups below those."""
    legend_w = 160
    width = max(560, 90 + len(groups) * (len(bar_labels) * 30 + 26)) + legend_w
    c = Canvas(width, 400)
    left, top, right, bottom = 64, 36, width - legend_w - 10, 400 - 78
    totals = [sum(x for x in comp if x is not None) for row in values for comp in row if comp is not None]
    ymax = max(totals + [1e-9]) * 1.08
    ypix = _frame(c, left, top, right, bottom, ymax, y_label, title)
    colors = colors or PALETTE
    gw = (right - left) / max(len(groups), 1)
    bw = min(30, (gw - 12) / max(len(bar_labels), 1))
    for g, glabel in enumerate(groups):
        gx = left + g * gw + (gw - bw * len(bar_labels)) / 2
        for b, blabel in enumerate(bar_labels):
            comp = values[g][b]
            x = gx + b * bw
            c.text(x + bw / 2, bottom + 10, blabel, size=9, anchor="end", rotate=-45)
            if comp is None:
                continue
            acc = 0.0
            for k, v in enumerate(comp):
                v = v or 0.0
                c.rect(x + 1, ypix(acc + v), bw - 2, ypix(acc) - ypix(acc + v), fill=colors[k % len(colors)],
                       title=f"{glabel} / {blabel} / {components[k]}: {v:.4g}")
                acc += v
        c.text(left + g * gw + gw / 2, bottom + 64, glabel, size=11, anchor="middle", weight="bold")
        if g > 0:
            c.line(left + g * gw, top, left + g * gw, bottom, stroke="#bbb", dash="2,3")
    _legend(c, [(lab, colors[k % len(colors)], None) for k, lab in enumerate(components)], right + 14, 50)
    return c.svg()


def time_series(title: str, xs: list[float], ys: list[float], x_label: str, y_label: str,
                hline: float | None = None, hline_label: str = "") -> str:
    """One line over a numeric x axis (e.g. load average against minutes into the run)."""
    c = Canvas(760, 300)
    left, top, right, bottom = 64, 36, 740, 300 - 50
    ymax = max(list(ys) + [hline or 0, 1e-9]) * 1.1
    ypix = _frame(c, left, top, right, bottom, ymax, y_label, title)
    xmax = max(xs + [1e-9])
    xt = nice_ticks(0, xmax, 8)

    def xpix(v):
        return left + v / xt[-1] * (right - left)

    for t in xt:
        c.line(xpix(t), bottom, xpix(t), bottom + 4)
        c.text(xpix(t), bottom + 17, fmt_tick(t), size=11, anchor="middle")
    c.text((left + right) / 2, bottom + 38, x_label, size=12, anchor="middle")
    if hline is not None:
        c.line(left, ypix(hline), right, ypix(hline), stroke="#666", width=1.2, dash="5,4")
        c.text(right - 4, ypix(hline) - 5, hline_label, size=11, anchor="end", fill="#444")
    c.polyline([(xpix(x), ypix(y)) for x, y in zip(xs, ys)], PALETTE[0], width=1.8)
    return c.svg()
