"""Bar charts for results, drawn on the server as SVG: no script, no external asset.

The chart is an image with a text alternative (``role="img"``, ``aria-labelledby`` its
``<title>`` and ``<desc>``); the page puts the same figures in a table next to it, which
is what screen-reader users and anyone who wants exact numbers read.

The page's Content-Security-Policy forbids inline styles, so the chart is styled only
with presentation attributes (``fill=``) and classes the stylesheet may refine; it reads
the same without any stylesheet. Bars are horizontal, one row per option, so that long
option names fit a narrow screen: the ``viewBox`` scales the chart to the width it has.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

#: The drawing's own units; the SVG scales to the width of its container.
WIDTH = 640
#: Bars start here and may be this long, leaving room for the figure after the longest.
BAR_START = 0
BAR_SPACE = 560
LABEL_HEIGHT = 22
BAR_HEIGHT = 26
ROW_GAP = 14
#: The longest option name drawn in the chart (the table beside it has it whole).
LABEL_CHARACTERS = 60

#: GOV.UK Frontend's colours: text, a bar, the winning bar (each at least 3:1 on white).
TEXT = "#0b0c0c"
BAR = "#1d70b8"
HIGHLIGHT = "#00703c"

#: Unicode's first-strong isolate and its end: the plain-text <bdi>, so that a
#: right-to-left name cannot reorder the figures drawn after it.
ISOLATE, END_ISOLATE = "\u2068", "\u2069"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    highlight: bool = False


def bar_chart(
    bars: Sequence[Bar], *, chart_id: str, title: str, description: str, value_text: Sequence[str]
) -> Markup:
    """An accessible horizontal bar chart of non-negative whole numbers.

    ``chart_id`` prefixes the ids of its title and description (unique in the page);
    ``value_text`` is each bar's figure as the reader's locale writes it. Bar lengths
    are proportional to the values; the longest is :data:`BAR_SPACE` long.
    """
    if len(value_text) != len(bars):
        raise ValueError("one value text per bar")
    if any(bar.value < 0 for bar in bars):
        raise ValueError("bar values must not be negative")
    highest = max((bar.value for bar in bars), default=0)
    row = LABEL_HEIGHT + BAR_HEIGHT + ROW_GAP
    height = max(row * len(bars), row)
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="harmony-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{title_id} {desc_id}" id={quoteattr(chart_id)}>',
        f"<title id={quoteattr(title_id)}>{escape(title)}</title>",
        f"<desc id={quoteattr(desc_id)}>{escape(description)}</desc>",
    ]
    for index, (bar, figure) in enumerate(zip(bars, value_text, strict=True)):
        top = index * row
        length = bar_length(bar.value, highest)
        kind = "harmony-chart__bar--highlight" if bar.highlight else "harmony-chart__bar"
        parts += [
            f'<text class="harmony-chart__label" x="{BAR_START}" y="{top + LABEL_HEIGHT - 6}" '
            f'fill="{TEXT}" font-size="18">{escape(_isolated(bar.label))}</text>',
            f'<rect class="{kind}" x="{BAR_START}" y="{top + LABEL_HEIGHT}" '
            f'width="{length:.2f}" height="{BAR_HEIGHT}" '
            f'fill="{HIGHLIGHT if bar.highlight else BAR}"/>',
            f'<text class="harmony-chart__value" x="{BAR_START + length + 8:.2f}" '
            f'y="{top + LABEL_HEIGHT + BAR_HEIGHT - 7}" fill="{TEXT}" font-size="18" '
            f'font-weight="bold">{escape(figure)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_length(value: int, highest: int) -> float:
    """The bar's length: proportional to ``value``, :data:`BAR_SPACE` for the highest."""
    return 0.0 if highest <= 0 else BAR_SPACE * value / highest


def _isolated(label: str) -> str:
    short = label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
    # XML 1.0 forbids control characters; an override inside the isolate ends with it.
    clean = "".join(
        c for c in short if unicodedata.category(c) not in ("Cc", "Cs") and c not in "\ufffe\uffff"
    )
    return f"{ISOLATE}{clean}{END_ISOLATE}"
