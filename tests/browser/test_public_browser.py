"""Every public page in real Chromium, in every language Harmony ships: axe-core finds no
WCAG 2.2 AA violation (target-size included), html-validate finds nothing, the results
chart is an image with its text alternative in the accessibility tree, and a 320 px
wide screen needs no sideways scrolling."""

from __future__ import annotations

import pytest

from harmony_matrix.demo import load_demo
from harmony_matrix.i18n import available_languages
from tests.browser.conftest import LiveServer, axe_violations, html_errors
from tests.companion.public_data import PublicParty, public_party

#: A phone held upright (WCAG 1.4.10 Reflow: 320 CSS pixels, as at 400% zoom).
NARROW = {"width": 320, "height": 640}


def _party(live: LiveServer) -> PublicParty:
    async def build(ctx):
        await load_demo(ctx)
        return await public_party(ctx)

    return live.run(build)


def _pages(party: PublicParty) -> dict[str, tuple[str, int]]:
    """Every public page: name -> (path, expected status)."""
    return {
        "home": ("/", 200),
        "assemblies": ("/assemblies", 200),
        "assembly": ("/assemblies/operational-working-group", 200),
        "assembly with member assemblies": ("/assemblies/media-working-group", 200),
        "meeting, planning": (f"/meetings/{party.planned}", 200),
        "meeting, discussion": (f"/meetings/{party.discussing}", 200),
        "meeting, debate": (f"/meetings/{party.debating}", 200),
        "meeting, vote": (f"/meetings/{party.voting}", 200),
        "meeting, consensus": (f"/meetings/{party.counted}", 200),
        "results": (f"/meetings/{party.counted}/results", 200),
        "results, ballot open": (f"/meetings/{party.voting}/results", 200),
        "results, no vote": (f"/meetings/{party.debating}/results", 200),
        "petitions": ("/petitions", 200),
        "petition": (f"/petitions/{party.petition}", 200),
        "consensus": ("/consensus", 200),
        "accessibility": ("/accessibility", 200),
        "not found": ("/assemblies/no-such-assembly", 404),
        "private meeting": (f"/meetings/{party.private}", 404),
    }


@pytest.mark.parametrize("language", available_languages())
def test_every_public_page_passes_axe_and_html_validate(live, page, language):
    party = _party(live)
    violations: dict[str, list] = {}
    rendered: dict[str, str] = {}
    for name, (path, status) in _pages(party).items():
        response = page.goto(f"{live.url}{path}?lang={language}")
        assert response is not None and response.status == status, name
        html = response.text()
        assert f'lang="{language}"' in html.split(">", 2)[1], name
        rendered[f"{name} ({language})"] = html
        found = axe_violations(page)
        if found:
            violations[name] = found
    assert violations == {}
    errors = {name: found for name, found in html_errors(rendered).items() if found}
    assert errors == {}


def test_the_chart_s_text_alternative_is_in_the_accessibility_tree(live, page):
    party = _party(live)
    page.goto(f"{live.url}/meetings/{party.counted}/results")
    totals = page.get_by_role("img", name=f"Total scores in round 1 of {party.counted}")
    assert totals.count() == 1
    name = totals.evaluate("svg => svg.getAttribute('aria-labelledby')")
    description = page.locator(f"#{name.split()[1]}").text_content()
    assert "\u20682. Meet every two months\u2069: 41" in description  # the name isolated
    runoff = page.get_by_role("img", name=f"The runoff in round 1 of {party.counted}")
    assert runoff.count() == 1
    # The same figures as a table, which screen readers can move through cell by cell.
    table = page.get_by_role("table", name="Total score of each option")
    assert table.get_by_role("row").count() == 4


@pytest.mark.parametrize("which", ["results", "assembly", "meeting", "consensus"])
def test_a_320_pixel_screen_needs_no_sideways_scrolling(live, browser, which):
    party = _party(live)
    path = {
        "results": f"/meetings/{party.counted}/results",
        "assembly": "/assemblies/operational-working-group",
        "meeting": f"/meetings/{party.debating}",
        "consensus": "/consensus",
    }[which]
    context = browser.new_context(locale="en-GB", viewport=NARROW)
    try:
        narrow = context.new_page()
        narrow.goto(f"{live.url}{path}")
        widths = narrow.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
    finally:
        context.close()
