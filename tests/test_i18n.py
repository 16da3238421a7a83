"""Catalogs are complete and correct, messages render per reader, negotiation works."""

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from harmony_matrix.i18n import (
    _,
    _n,
    available_languages,
    catalog,
    format_datetime,
    known_language,
    list_of,
    negotiate,
    normalise_language,
    text_direction,
)

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _same_placeholders(msgid, strings) -> bool:
    """Babel's checker lets a translation drop a named placeholder; we do not, except
    ``count`` in a plural form (French writes "une signature", not "1 signature")."""
    ids = msgid if isinstance(msgid, tuple) else (msgid,)
    wanted = set().union(*(set(PLACEHOLDER.findall(i)) for i in ids))
    if isinstance(msgid, tuple):
        found = set().union(*(set(PLACEHOLDER.findall(s)) for s in strings))
        return wanted - {"count"} <= found <= wanted
    return set(PLACEHOLDER.findall(strings[0])) == wanted


def _fresh_template(tmp_path: Path):
    """Extract the messages from the code as it is now, as `make messages` does."""
    out = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_n:1,2",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    with out.open("rb") as handle:
        return read_po(handle)


@pytest.mark.parametrize("language", [lang for lang in available_languages() if lang != "en"])
def test_catalog_is_complete_and_correct(language, tmp_path):
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        po = read_po(handle, locale=language)
    problems = []
    for message in po:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(("fuzzy", message.id))
        if isinstance(message.id, tuple) and len(strings) != po.num_plurals:
            problems.append(("plural forms", message.id))
        if not all(strings):
            problems.append(("untranslated", message.id))
        problems.extend(("check", message.id, str(e)) for e in message.check(po))
        if not _same_placeholders(message.id, strings):
            problems.append(("placeholders", message.id))
    template = _fresh_template(tmp_path)
    missing = [m.id for m in template if m.id and m.id not in po]
    assert not problems, problems
    assert not missing, f"run `./dev messages` and translate: {missing}"


def test_the_completeness_checks_can_fail(tmp_path):
    """An unknown placeholder fails Babel's checker; a dropped one fails ours."""
    po_text = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, python-format\nmsgid "Quorum is %(needed)s"\nmsgstr "Le quorum est %(besoin)s"\n'
    )
    path = tmp_path / "bad.po"
    path.write_text(po_text)
    with path.open("rb") as handle:
        po = read_po(handle, locale="fr")
    assert any(list(m.check(po)) for m in po if m.id)
    assert not _same_placeholders("Quorum is %(needed)s", ("Le quorum est atteint",))
    assert _same_placeholders("Quorum is %(needed)s", ("Le quorum est %(needed)s",))
    assert _same_placeholders(("%(count)s sig", "%(count)s sigs"), ("une sig", "%(count)s sigs"))


def test_messages_render_in_each_readers_language():
    message = _("Quorum has not been reached, so the meeting cannot decide yet.")
    english = message.render("en")
    french = message.render("fr")
    assert english.startswith("Quorum has not")
    assert french != english and "quorum" in french.lower()
    # A language without a catalog falls back to English.
    assert message.render("de") == english


def test_plurals_and_parameters():
    one = _n("%(count)s signature", "%(count)s signatures", 1)
    many = _n("%(count)s signature", "%(count)s signatures", 3)
    assert (one.render("en"), many.render("en")) == ("1 signature", "3 signatures")
    steps = list_of([_("facts collected"), _("materials prepared")])
    nested = _("The meeting cannot open yet. Still to do: %(steps)s.", steps=steps)
    assert nested.render("en") == (
        "The meeting cannot open yet. Still to do: facts collected and materials prepared."
    )
    french = nested.render("fr")
    assert "%(" not in french and "facts" not in french and french != nested.render("en")


def test_lists_and_dates_follow_the_language():
    items = list_of(["A", "B", "C"])
    assert items.render("en") == "A, B and C"
    assert items.render("fr") == "A, B et C"
    moment = datetime(2026, 7, 1, 18, 30, tzinfo=UTC)
    english = format_datetime(moment, "en", "Europe/London")
    assert english == "Wednesday, 1 July 2026, 19:30 (British Summer Time)"
    french = format_datetime(moment, "fr", "Europe/London")
    assert "juillet" in french and "19:30" in french


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        ("de, en;q=0.5", "en"),
        ("de, fr;q=0.1", "fr"),
        ("fr;q=0, en", "en"),
        ("*", "en"),
        ("fr;q=banana, en", "en"),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header) == expected


def test_language_codes():
    assert normalise_language("FR_ca") == "fr"
    assert normalise_language("zz") is None
    assert known_language("cy-GB") == "cy" and known_language("klingon!") is None
    assert text_direction("ar") == "rtl" and text_direction("fr") == "ltr"
    assert catalog("en").gettext("x") == "x"
