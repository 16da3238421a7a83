"""The results chart: valid SVG, an image with a text alternative, one bar per option
with lengths proportional to the totals, and nothing the CSP would block."""

from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.companion.charts import BAR_SPACE, Bar, bar_chart, bar_length

SVG = "{http://www.w3.org/2000/svg}"


def _chart(values, labels=None, highlight=None):
    labels = labels or [f"{i + 1}. Option" for i in range(len(values))]
    bars = [
        Bar(label, value, label == highlight) for label, value in zip(labels, values, strict=True)
    ]
    markup = bar_chart(
        bars,
        chart_id="totals-1",
        title="Total scores",
        description="A bar chart of each option's total score.",
        value_text=[str(v) for v in values],
    )
    return str(markup), ElementTree.fromstring(str(markup))


def _bars(svg):
    return [r for r in svg.iter(f"{SVG}rect") if "harmony-chart__bar" in r.get("class")]


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12))
def test_one_bar_per_option_proportional_to_its_total(values):
    markup, svg = _chart(values)
    bars = _bars(svg)
    assert len(bars) == len(values)
    widths = [float(bar.get("width")) for bar in bars]
    highest = max(values)
    for value, width in zip(values, widths, strict=True):
        expected = 0 if highest == 0 else BAR_SPACE * value / highest
        assert width == pytest.approx(expected, abs=0.006)
    if highest:
        assert max(widths) == BAR_SPACE
    assert "style=" not in markup


def test_it_is_an_image_named_by_its_title_and_description():
    markup, svg = _chart([3, 1])
    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Total scores"
    assert desc.text == "A bar chart of each option's total score."
    assert "style" not in markup and "<script" not in markup


def test_member_text_is_escaped_and_isolated():
    evil = '<script>alert("x")</script>\u202e&\x07'
    markup, svg = _chart([1, 2], labels=[evil, "B"], highlight="B")
    assert "<script>" not in markup
    label = next(svg.iter(f"{SVG}text")).text
    assert label == '\u2068<script>alert("x")</script>\u202e&\u2069'  # no control character
    assert [bar.get("class") for bar in _bars(svg)] == [
        "harmony-chart__bar",
        "harmony-chart__bar--highlight",
    ]


def test_a_long_name_is_shortened_in_the_chart_only():
    _markup, svg = _chart([1], labels=["x" * 200])
    label = next(svg.iter(f"{SVG}text")).text
    assert len(label) == 62 and label.endswith("…\u2069")


def test_bars_need_a_figure_each_and_no_negative_value():
    with pytest.raises(ValueError, match="one value text per bar"):
        bar_chart([Bar("a", 1)], chart_id="c", title="t", description="d", value_text=[])
    with pytest.raises(ValueError, match="negative"):
        bar_chart([Bar("a", -1)], chart_id="c", title="t", description="d", value_text=["-1"])
    assert bar_length(0, 0) == 0
