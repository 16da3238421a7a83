"""A whole Moot, run through the bot's commands and the use cases, with every message the
bot would send rendered in every language Harmony ships: the replies in the room, and
what the use cases queue for the outbox (announcements in the room, direct messages).

The members write in Arabic (the question, the suggestions, the options, the place, a
display name), so that every place a member's words are put into the bot's own sentence
is seen: in a plain-text body they must sit in a bidirectional isolate (U+2068 ...
U+2069), or a right-to-left client (and a left-to-right one, for Arabic words) shows the
sentence around them in the wrong order.

Parametrized over ``available_languages()``: Welsh and Polish join when their catalogs
are merged.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from harmony_matrix.bot.replies import Reply, render_plain
from harmony_matrix.i18n import DEFAULT_LANGUAGE, Message, available_languages
from harmony_matrix.services import ballots, records
from harmony_matrix.storage.models import Person
from tests.ballots.helpers import links_by_person, path_of
from tests.services.helpers import ANA, CHLOE, ELIF, GWEN, to_start

from .conftest import Chat

FSI, PDI = "\u2068", "\u2069"

QUESTION = "هل ننشر نشرة شهرية؟"
FACTS = "نتائج الاستبيان: 40 إجابة"
MATERIALS = "شرائح، ونسخ بخط كبير"
PLACE = "قاعة المجتمع، 1 الشارع الرئيسي"
ACCESS = "مدخل بلا درج، وترجمة نصية"
ROUTE = "الحافلة 12 إلى الشارع الرئيسي"
SUGGESTION = "نرسلها بالبريد الإلكتروني"
OPTIONS = ("شهرياً", "مرتين في السنة", "سنوياً")
MERGED = "مرة كل فصل"
WITHDRAWN = "أسبوعياً"
CHLOE_NAME = "كلوي مارتن"
#: Everything a member wrote that the bot may repeat.
MEMBER_TEXTS = (
    QUESTION,
    FACTS,
    MATERIALS,
    PLACE,
    ACCESS,
    ROUTE,
    SUGGESTION,
    *OPTIONS,
    MERGED,
    WITHDRAWN,
    CHLOE_NAME,
)


@dataclass(frozen=True)
class Sent:
    """One message the bot would send, before it is rendered."""

    what: str  # the command it answers, or the outbox's dedupe key
    render: object  # language -> text
    #: A file's name (the meeting's .ics), the same in every language.
    file_name: bool = False

    def text(self, language: str) -> str:
        assert callable(self.render)
        return str(self.render(language))


class Outbox:
    """Keeps each message the use cases queue (a room announcement, a direct message)
    as the :class:`Message` it was queued as, so it can be rendered in any language.

    The use cases render a message once, in its recipient's language, when they queue
    it; this wraps ``records.enqueue`` (which ``direct_message`` calls too) in every
    module that imported it, and still queues each message."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queued: list[tuple[str, Message, bool]] = []
        original = records.enqueue

        async def enqueue(session, at, *, message: Message, dedupe_key: str, **kwargs):
            self.queued.append((dedupe_key, message, kwargs.get("attachment") is not None))
            return await original(session, at, message=message, dedupe_key=dedupe_key, **kwargs)

        for name, module in list(sys.modules.items()):
            if name.startswith("harmony_matrix.") and getattr(module, "enqueue", None) is original:
                monkeypatch.setattr(module, "enqueue", enqueue)


async def whole_moot(chat: Chat, outbox: Outbox) -> list[Sent]:
    """A Moot from its call to the consensus by secret ballot, in the Media WG's room."""
    replies: list[tuple[str, Reply]] = []

    async def say(sender: str, body: str) -> Reply:
        reply = await chat.ask(sender, body)
        replies.append((body, reply))
        return reply

    async with chat.ctx.transaction() as session:
        await session.execute(
            update(Person).where(Person.matrix_id == CHLOE).values(display_name=CHLOE_NAME)
        )
    called = await say(ANA, f"!moot call {QUESTION}")
    ref = re.search(r"M-\d+", render_plain(called, "en")).group()
    await say(ANA, f"!prepare facts {FACTS}")
    await say(ANA, f"!prepare materials {MATERIALS}")
    await say(
        ANA,
        f'!schedule 2026-11-12 19:00 --place "{PLACE}" --online https://meet.example/media '
        f'--access "{ACCESS}" --route "{ROUTE}"',
    )
    await say(ANA, "!notify")
    await to_start(chat.ctx, ref)
    await say(ANA, "!start")
    await say(ANA, "!here")
    await say(GWEN, "!here")
    await say(ANA, f'!here "{CHLOE_NAME}"')
    await say(ANA, f"!here {ELIF}")
    await say(ELIF, f"!suggest {SUGGESTION}")
    await say(ANA, "!debate")
    for text in OPTIONS:
        await say(ANA, f"!option add {text}")
    await say(ANA, f"!option merge 2 3 {MERGED}")
    await say(ANA, f"!option add {WITHDRAWN}")
    await say(ANA, "!option withdraw 5")
    await say(ANA, "!options")
    await say(ANA, "!vote")
    await say(ANA, "!ballot open --closes 1d")
    links = await links_by_person(chat.ctx)
    for who in (ANA, CHLOE, GWEN):
        await ballots.cast_ballot(chat.ctx, path_of(links[who]), {1: 5, 4: 1})
    await say(ANA, "!ballot status")
    await ballots.cast_ballot(chat.ctx, path_of(links[ELIF]), {1: 2, 4: 4})
    await say(ANA, "!ballot close")
    sent = [
        Sent(body, lambda language, reply=reply: render_plain(reply, language))
        for body, reply in replies
    ]
    sent += [Sent(key, message.render, file) for key, message, file in outbox.queued]
    return sent


@pytest.fixture
async def moot(media_room: Chat, monkeypatch: pytest.MonkeyPatch, clock) -> list[Sent]:
    return await whole_moot(media_room, Outbox(monkeypatch))


#: What is left of a message once the member's words, IDs, numbers, commands and
#: addresses are taken out: if nothing is, the message is only names and IDs and reads
#: the same in every language.
NOT_WORDS = re.compile(
    "|".join(
        [
            *map(re.escape, MEMBER_TEXTS),
            r"@[\w.\-=/]+:[\w.\-:]+",  # Matrix IDs
            r"https?://\S+",
            r"![a-z]+",  # commands
            r"\bM-\d+\b",
        ]
    )
)


def only_names_and_ids(text: str) -> bool:
    return not re.sub(r"[\W\d_]+", "", NOT_WORDS.sub("", text))


def not_isolated(text: str) -> list[str]:
    """Each member's text in ``text`` that is not inside an isolate of its own (an
    option's name may be isolated with its number: "1. Monthly", as a count names it)."""
    wrong = []
    for member_text in MEMBER_TEXTS:
        for found in re.finditer(re.escape(member_text), text):
            before = re.sub(r"\d+\. $", "", text[: found.start()])
            after = text[found.end() :]
            if not (before.endswith(FSI) and after.startswith(PDI)):
                wrong.append(f"{member_text!r} in {text!r}")
    return wrong


async def test_the_moot_sends_replies_announcements_and_direct_messages(moot):
    """The run below is what it claims: the room's replies, and the outbox's room
    announcements and direct messages, with the members' words in them."""
    keys = [s.what for s in moot]
    assert sum(k.startswith("!") for k in keys) >= 20
    assert any(k.startswith("!ballot close") for k in keys)
    english = [s.text("en") for s in moot if not s.what.startswith("!")]
    assert len(english) >= 10
    for member_text in (QUESTION, SUGGESTION, OPTIONS[0], MERGED):
        assert any(member_text in text for text in english), member_text
    assert any(CHLOE_NAME in s.text("en") for s in moot)


@pytest.mark.parametrize("language", available_languages())
async def test_every_message_of_a_moot_renders_in_every_language(moot, language):
    problems = []
    for sent in moot:
        try:
            text = sent.text(language)
        except (KeyError, ValueError, TypeError) as error:  # a lost or broken placeholder
            problems.append(f"{sent.what}: {error!r}")
            continue
        if "%(" in text or "%s" in text:
            problems.append(f"{sent.what}: a placeholder is left in {text!r}")
        problems.extend(f"{sent.what}: {wrong}" for wrong in not_isolated(text))
        english = sent.text(DEFAULT_LANGUAGE)
        same_everywhere = sent.file_name or only_names_and_ids(english)
        if language != DEFAULT_LANGUAGE and not same_everywhere and text == english:
            problems.append(f"{sent.what}: not translated: {text!r}")
    assert not problems, "\n".join(problems)


def test_the_checks_can_fail():
    # No member's text is part of another: each is found on its own.
    for one in MEMBER_TEXTS:
        assert [other for other in MEMBER_TEXTS if one in other] == [one]
    assert not_isolated(f"{FSI}1. {OPTIONS[0]}{PDI} wins") == []
    name = CHLOE_NAME
    assert not_isolated(f"{name} is here") == [f"{name!r} in {name + ' is here'!r}"]
    assert not_isolated(f"{FSI}{name} is here") != []
    assert not_isolated(f"{FSI}{name}{PDI} is here") == []
    assert only_names_and_ids(f"- 1. {FSI}{OPTIONS[0]}{PDI}\n- M-12 {ANA}")
    assert not only_names_and_ids(f"{FSI}{OPTIONS[0]}{PDI} wins")
