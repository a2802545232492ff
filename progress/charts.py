"""Charts drawn on the server as inline SVG: the geometry here (pure), the markup in the
templates progress/_bar_chart.html and progress/_line_chart.html.

No script and no style attribute (the pages' Content-Security-Policy allows neither inline):
positions are SVG attributes, colours come from classes in static/supervision/progress.css. Each
chart is an image with a title and a description for screen readers, and the page gives its
numbers in a table as well.
"""

from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34  # room for the axes' labels


def nice_top(value):
    """The top of the value axis: the smallest of 1, 2, 2.5, 5 x 10^n at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            top = step * magnitude
            return int(top) if float(top).is_integer() else top
    return 10 * magnitude


def _number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def plain(value):
    """A coordinate as SVG reads it, whatever the page's language ("12.5", never "12,5")."""
    return f"{value:g}"


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bar's category (a day, a week)
    value: str  # the number it stands for, as data ("4.5")
    words: str  # the same in the page's language ("4,5" in Russian)
    axis_label: str = ""  # shown under the axis ("" where there is no room)


@dataclass
class BarChart:
    bars: list
    ticks: list
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM
    right_edge: int = WIDTH - RIGHT
    label_y: float = HEIGHT - BOTTOM + 16

    @property
    def empty(self):
        return not any(bar.value for bar in self.bars)


def bar_chart(items, *, label_every=1, number=None):
    """`items`: [(category label, value, axis label)] in order. Every `label_every`-th category
    is named under its bar (a phone has no room for fourteen dates). `number(value)` writes a
    number for people (the page's decimal separator); coordinates stay plain."""
    number = number or _number
    values = [value or 0 for _label, value, _axis in items]
    top = nice_top(max(values, default=0))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(items), 1)
    bars = []
    for index, (label, value, axis_label) in enumerate(items):
        height = plot_height * (value or 0) / top
        bars.append(Bar(
            x=round(LEFT + index * slot + slot * 0.15, 2), y=round(TOP + plot_height - height, 2),
            width=round(slot * 0.7, 2), height=round(height, 2), label=label, value=_number(value or 0),
            words=number(value or 0),
            # Counted from the newest, so the last bar (today) is always named.
            axis_label=axis_label if (len(items) - 1 - index) % label_every == 0 else "",
        ))
    ticks = [Tick(round(TOP + plot_height - plot_height * fraction, 2), number(top * fraction))
             for fraction in (0, 0.5, 1)]
    return BarChart(bars=bars, ticks=ticks)


@dataclass
class Dot:
    x: float
    y: float
    label: str  # when, as shown
    value: str  # the value, as shown


@dataclass
class LineChart:
    dots: list
    ticks: list
    path: str  # the polyline's points attribute
    first_label: str = ""
    last_label: str = ""
    bands: list = field(default_factory=list)  # [(y, label)] guide lines (the pass and good thresholds)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM
    label_y: float = HEIGHT - BOTTOM + 16


def line_chart(points, *, start, end, when_label, value_label, guides=()):
    """`points`: objects with `when` (a datetime) and `value` (0-100), oldest first, drawn on a
    0-100 axis between the datetimes `start` and `end`. `when_label(when)` and `value_label(point)`
    give the words; `guides` are values (e.g. a pass threshold) drawn as dashed lines."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    span = max((end - start).total_seconds(), 1.0)

    def x_of(when):
        fraction = min(max((when - start).total_seconds() / span, 0.0), 1.0)
        return round(LEFT + plot_width * fraction, 2)

    def y_of(value):
        return round(TOP + plot_height - plot_height * min(max(value, 0.0), 100.0) / 100.0, 2)

    dots = [Dot(x_of(point.when), y_of(point.value), when_label(point.when), value_label(point)) for point in points]
    ticks = [Tick(y_of(value), f"{value}%") for value in (0, 50, 100)]
    return LineChart(
        dots=dots, ticks=ticks, path=" ".join(f"{dot.x},{dot.y}" for dot in dots),
        first_label=when_label(start), last_label=when_label(end),
        bands=[(y_of(value), f"{value:g}%") for value in guides],
    )
