"""The browser-test harness itself: each check can fail, and the companion's real pages
pass it in a real Chromium under the companion's real Content-Security-Policy.

The error page stands in for every page here: it is the one page that exists before the
ballot and public pages do, and it uses the whole layout (base.html).
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer, axe_violations, html_errors

#: Chromium's name for the first family of the stack in web/assets/harmony.scss.
SYSTEM_FONT = "system-ui"

BROKEN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken on purpose</title></head>
<body>
<main>
  <h1 id="twice">A form nobody can use</h1>
  <p id="twice">The same id twice.</p>
  <form action="/nowhere" method="post"><input type="text" name="name"></form>
</main>
</body>
</html>
"""

#: Radios as govukRadios renders them, for the right-to-left check.
RADIOS = """
<div class="govuk-form-group">
  <fieldset class="govuk-fieldset">
    <legend class="govuk-fieldset__legend">Score</legend>
    <div class="govuk-radios" data-module="govuk-radios">
      <div class="govuk-radios__item">
        <input class="govuk-radios__input" id="score" name="score" type="radio" value="5">
        <label class="govuk-label govuk-radios__label" for="score">Five</label>
      </div>
    </div>
  </fieldset>
</div>
<div class="govuk-inset-text">Inset</div>
"""


def open_missing_page(page: Any, live: LiveServer) -> Any:
    response = page.goto(f"{live.url}/no-such-page")
    assert response.status == 404
    return response


def test_axe_passes_the_error_page_and_can_fail(page: Any, live: LiveServer) -> None:
    open_missing_page(page, live)
    assert axe_violations(page) == []

    page.set_content(BROKEN_PAGE)
    found = {violation["id"]: violation["impact"] for violation in axe_violations(page)}
    assert found.get("label") == "critical"


def test_html_validate_passes_the_error_page_and_can_fail(page: Any, live: LiveServer) -> None:
    open_missing_page(page, live)
    # The HTML the server sent, not the DOM after scripts ran.
    served = page.request.get(f"{live.url}/no-such-page").text()

    errors = html_errors({"404": served, "broken": BROKEN_PAGE})

    assert errors["404"] == []
    rules = {message.split(":", 1)[0] for message in errors["broken"]}
    assert {"no-dup-id", "input-missing-label"} <= rules


def test_the_stylesheet_and_script_load_under_the_content_security_policy(
    page: Any, live: LiveServer
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "response",
        lambda response: failed.append(response.url) if response.status >= 400 else None,
    )

    response = open_missing_page(page, live)
    page.wait_for_load_state("load")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert refused == []
    # Only the page itself is missing: no stylesheet, script or icon.
    assert failed == [f"{live.url}/no-such-page"]
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    heading_font = page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily")
    assert body_font.startswith(SYSTEM_FONT)
    assert heading_font.startswith(SYSTEM_FONT)
    # harmony.js ran: GOV.UK Frontend's enhancements are on, without an error.
    page.wait_for_function("document.body.classList.contains('govuk-frontend-supported')")
    assert script_errors == []


def test_the_policy_is_really_enforced_against_inline_script(page: Any, live: LiveServer) -> None:
    """The check above would pass if no policy were sent at all: an inline script in the
    companion's own page must be refused, and say so on the console."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    open_missing_page(page, live)

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "document.body.dataset.inline = 'ran'";
            document.head.append(script);
        }"""
    )

    assert page.evaluate("document.body.dataset.inline") is None
    assert any("Content Security Policy" in text for text in refused)


def test_without_javascript_the_page_is_still_styled(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        open_missing_page(page, live)
        # No script ran: GOV.UK Frontend's enhancements are off, its styles are not.
        assert "govuk-frontend-supported" not in (page.get_attribute("body", "class") or "")
        heading = page.locator("h1")
        assert heading.evaluate("h => getComputedStyle(h).fontFamily").startswith(SYSTEM_FONT)
        assert heading.evaluate("h => getComputedStyle(h).fontWeight") == "700"
        # The service navigation is a plain list of links, all visible.
        assert page.get_by_role("link", name="Assemblies").first.is_visible()
    finally:
        context.close()


def test_right_to_left_pages_mirror_radios_and_borders(page: Any, live: LiveServer) -> None:
    open_missing_page(page, live)
    page.evaluate("html => { document.querySelector('main').innerHTML = html }", RADIOS)

    def layout() -> dict[str, Any]:
        return dict(
            page.evaluate(
                """() => {
                    const label = document.querySelector(".govuk-radios__label");
                    const circle = getComputedStyle(label, "::before");
                    const text = label.getBoundingClientRect();
                    const item = label.parentElement.getBoundingClientRect();
                    const inset = getComputedStyle(document.querySelector(".govuk-inset-text"));
                    return {
                        circleLeft: parseFloat(circle.left), circleRight: parseFloat(circle.right),
                        textCentre: (text.left + text.right) / 2 - item.left, itemWidth: item.width,
                        insetLeft: inset.borderLeftWidth, insetRight: inset.borderRightWidth,
                    };
                }"""
            )
        )

    ltr = layout()
    page.evaluate("document.documentElement.dir = 'rtl'")
    rtl = layout()

    # The circle sits on the side where lines start, with its label after it.
    assert ltr["circleLeft"] == 2 and ltr["textCentre"] > 44
    assert rtl["circleRight"] == 2 and rtl["textCentre"] < rtl["itemWidth"] - 44
    assert (ltr["insetLeft"], ltr["insetRight"]) == ("10px", "0px")
    assert (rtl["insetLeft"], rtl["insetRight"]) == ("0px", "10px")
