"""A member voting through the web companion's ballot pages as a browser does: the
start page, the form, the check-your-answers page and its button, reading each page's
own form (its action, its hidden CSRF token) rather than knowing the routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import aiohttp


class VotingError(Exception):
    """A ballot page answered other than a member would expect."""


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, set[str]] = field(default_factory=dict)


class _PageReader(HTMLParser):
    """The forms of a page (by id) and the text of elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, _Form] = {}
        self.texts: dict[str, str] = {}
        self._form: _Form | None = None
        self._text_of: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = _Form(action=found.get("action", ""))
            self.forms[found.get("id", "")] = self._form
        elif tag == "input" and self._form is not None and "name" in found:
            if found.get("type") == "radio":
                self._form.radios.setdefault(found["name"], set()).add(found.get("value", ""))
            elif found.get("type") == "hidden":
                self._form.fields[found["name"]] = found.get("value", "")
        if "id" in found and tag != "form":
            self._text_of = found["id"]
            self.texts.setdefault(self._text_of, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        self._text_of = None

    def handle_data(self, data: str) -> None:
        if self._text_of is not None:
            self.texts[self._text_of] += data


def _read(page: str) -> _PageReader:
    reader = _PageReader()
    reader.feed(page)
    return reader


@dataclass(frozen=True)
class WebVoter:
    """The companion at ``base_url``; each ballot in a session of its own, as a member's
    browser opening the link from their direct message."""

    base_url: str
    language: str = "en"

    async def vote(self, link: str, scores: dict[int, int]) -> str:
        """Cast ``scores`` (option number: 0 to 5) through the pages; the receipt code."""
        try:
            return await self._vote(link, scores)
        except aiohttp.ClientError as error:
            # aiohttp's errors quote the address, and a ballot page's holds the link.
            raise VotingError(
                f"the web companion did not answer ({type(error).__name__})"
            ) from None

    async def _vote(self, link: str, scores: dict[int, int]) -> str:
        headers = {"Accept-Language": self.language}
        async with aiohttp.ClientSession(headers=headers) as browser:
            start_url = f"{self.base_url}/vote/{link}"
            await self._get(browser, start_url)
            form_url = f"{start_url}/ballot"
            form = _read(await self._get(browser, form_url)).forms.get("ballot-form")
            if form is None:
                raise VotingError(f"no ballot form at {_shown(form_url)}")
            answers = dict(form.fields)
            for number, score in scores.items():
                name = f"score-{number}"
                if str(score) not in form.radios.get(name, set()):
                    raise VotingError(f"the ballot has no score {score} for option {number}")
                answers[name] = str(score)
            check_page = await self._post(browser, urljoin(form_url, form.action), answers)
            check = _read(check_page).forms.get("check-form")
            if check is None:
                raise VotingError("the answers were not taken: no check-your-answers page")
            receipt_page = await self._post(browser, urljoin(form_url, check.action), check.fields)
            receipt = _read(receipt_page).texts.get("receipt-code", "").strip()
            if not receipt:
                raise VotingError("the vote was not cast: no receipt code")
            return receipt

    async def _get(self, browser: aiohttp.ClientSession, url: str) -> str:
        async with browser.get(url) as response:
            if response.status != 200:
                raise VotingError(f"GET {_shown(url)}: {response.status}")
            return await response.text()

    async def _post(self, browser: aiohttp.ClientSession, url: str, form: dict[str, str]) -> str:
        # What a browser sends with a form of the page's own site.
        headers = {"Origin": self.base_url, "Sec-Fetch-Site": "same-origin"}
        async with browser.post(url, data=form, headers=headers) as response:
            if response.status != 200:
                raise VotingError(f"POST {_shown(url)}: {response.status}")
            return await response.text()


def _shown(url: str) -> str:
    """A ballot page's address without its link, which is the member's secret."""
    if "/vote/" not in url:
        return url
    before, after = url.split("/vote/", 1)
    rest = after.split("/", 1)[1] if "/" in after else ""
    return f"{before}/vote/…/{rest}"
