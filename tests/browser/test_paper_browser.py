"""The paper-ballot pages in real Chromium: no axe violations (WCAG 2.2 AA) and valid
HTML on the sign-in, entry, error, check and result pages; a secretary signs in, types
the ballots, checks and counts them with the keyboard alone."""

from __future__ import annotations

from typing import Any

from harmony_matrix.demo import load_demo
from harmony_matrix.services import paper_votes
from tests.ballots.helpers import meeting_at_vote, voters
from tests.browser.conftest import axe_violations, html_errors
from tests.services.helpers import ANA
from tests.services.paper_helpers import sign_in_link

MOST_TABS = 40


def _setup(live: Any) -> tuple[str, str]:
    async def work(ctx: Any) -> tuple[str, str]:
        await load_demo(ctx)
        ref = await meeting_at_vote(ctx, await voters(ctx, 6))
        await paper_votes.prepare_paper_vote(ctx, ANA, ref)
        return ref, await sign_in_link(ctx, ANA, ref)

    return live.run(work)


def _active(page: Any) -> dict[str, str]:
    return page.evaluate(
        """() => ({id: document.activeElement.id, tag: document.activeElement.tagName,
                   text: (document.activeElement.textContent || "").trim()})"""
    )


def _tab_to(page: Any, *, id: str | None = None, text: str | None = None) -> None:
    """Press Tab until the element with ``id`` or the button named ``text`` has focus."""
    for _press in range(MOST_TABS):
        page.keyboard.press("Tab")
        active = _active(page)
        if (id is not None and active["id"] == id) or (text is not None and active["text"] == text):
            return
    raise AssertionError(f"Tab never reached {id or text}")


def _checked(page: Any, response: Any, name: str, pages: dict[str, str]) -> None:
    """axe on the page as shown; the HTML as the server sent it, for html-validate (the
    browser's serialisation would rewrite it)."""
    violations = axe_violations(page)
    assert violations == [], (name, violations)
    pages[name] = response.text()


def test_a_secretary_enters_paper_ballots_with_the_keyboard(live, page):
    ref, link = _setup(live)
    pages: dict[str, str] = {}

    response = page.goto(f"{live.url}/paper/{link}")
    assert page.title().startswith(f"Sign in to enter paper ballots for {ref}")
    _checked(page, response, "sign-in", pages)
    _tab_to(page, text="Sign in")
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert page.url == f"{live.url}/paper", page.inner_text("main")
    assert page.title().startswith(f"Enter the paper ballots of {ref}")
    _checked(page, navigation.value, "entry", pages)

    _tab_to(page, id="ballots")
    page.keyboard.type("5, 0, 1\n7, 1, 1\n")
    _tab_to(page, text="Check ballots")
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert page.title().startswith("Error: ")
    # GOV.UK Frontend moves the focus to the error summary.
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    assert "Line 2: “7” is not a score." in page.inner_text(".govuk-error-summary")
    assert page.input_value("#ballots") == "5, 0, 1\n7, 1, 1\n"
    _checked(page, navigation.value, "error", pages)

    # The error's link leads to the lines; fix the second.
    _tab_to(page, text="Line 2: “7” is not a score. Give each option a whole number from 0 to 5.")
    page.keyboard.press("Enter")
    assert _active(page)["id"] == "ballots"
    page.keyboard.press("Control+End")
    for _key in range(len("7, 1, 1\n")):
        page.keyboard.press("Backspace")
    page.keyboard.type("4 1 0\n0 5 5\n")
    _tab_to(page, text="Check ballots")
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert page.title().startswith(f"Check the paper ballots of {ref}")
    assert "3 ballots, of at most 6." in page.inner_text("main")
    _checked(page, navigation.value, "check", pages)

    _tab_to(page, text="Count these paper ballots")
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert page.title().startswith(f"Paper ballots of {ref} counted")
    assert "Consensus: 1. Meet monthly" in page.inner_text(".govuk-panel")
    _checked(page, navigation.value, "result", pages)

    assert html_errors(pages) == {name: [] for name in pages}


def test_a_used_link_says_so_accessibly(live, page):
    _ref, link = _setup(live)
    page.goto(f"{live.url}/paper/{link}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/paper")
    page.goto(f"{live.url}/paper/{link}")
    assert "already been used" in page.inner_text("main")
    assert axe_violations(page) == []
