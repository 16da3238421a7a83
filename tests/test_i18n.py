"""Catalogs are complete and correct, messages render per reader, negotiation works."""

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from harmony_matrix.companion.rendering import Renderer
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
from scripts.check_catalogs import (
    check_catalog,
    expected_plural_forms,
    fresh_template,
    read_catalog,
    same_placeholders,
)

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"


@pytest.fixture(scope="module")
def template():
    """The messages of the code as it is now, extracted as `./dev messages` does."""
    return fresh_template()


@pytest.mark.parametrize("language", [lang for lang in available_languages() if lang != "en"])
def test_catalog_is_complete_and_correct(language, template):
    po = read_catalog(LOCALES / language / "LC_MESSAGES" / "messages.po", language)
    # The count comes from what the language needs, never from the catalog's header.
    assert expected_plural_forms(language) is not None, (
        f"{language} is a new language: add its plural forms to PLURAL_ORDER in "
        "scripts/check_catalogs.py"
    )
    report = check_catalog(po, language, template)
    missing = [p for p in report.problems if p[0] == "missing"]
    problems = [p for p in report.problems if p[0] != "missing"]
    assert not problems, problems
    assert not missing, f"run `./dev messages` and translate: {missing}"
    assert report.messages == report.translated > 0


def test_the_completeness_checks_can_fail(tmp_path):
    """An unknown placeholder fails Babel's checker; a dropped one fails ours."""
    po_text = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, python-format\nmsgid "Quorum is %(needed)s"\nmsgstr "Le quorum est %(besoin)s"\n'
    )
    path = tmp_path / "bad.po"
    path.write_text(po_text)
    po = read_catalog(path, "fr")
    assert any(list(m.check(po)) for m in po if m.id)
    assert not same_placeholders("Quorum is %(needed)s", ("Le quorum est atteint",))
    assert same_placeholders("Quorum is %(needed)s", ("Le quorum est %(needed)s",))
    assert same_placeholders(("%(count)s sig", "%(count)s sigs"), ("une sig", "%(count)s sigs"))


def _catalog(language, plural_forms, entries):
    header = (
        f'msgid ""\nmsgstr ""\n"Language: {language}\\n"\n'
        f'"Plural-Forms: {plural_forms}\\n"\n'
        '"Content-Type: text/plain; charset=utf-8\\n"\n\n'
    )
    return read_po(io.BytesIO((header + entries).encode()), locale=language)


PLURAL_ENTRY = '#, python-format\nmsgid "%(count)s day"\nmsgid_plural "%(count)s days"\n{strings}\n'


def _plural_entry(count):
    return PLURAL_ENTRY.format(
        strings="\n".join(f'msgstr[{i}] "%(count)s d{i}"' for i in range(count))
    )


@pytest.mark.parametrize(
    ("language", "plural_forms", "forms", "wrong"),
    [
        # What `pybabel init -l cy` writes: five forms, no zero.
        (
            "cy",
            "nplurals=5; plural=(n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 0);",
            5,
            {"plural count", "plural forms", "plural order"},
        ),
        # Six forms, but 0 ("zero") shares the "other" form.
        (
            "cy",
            "nplurals=6; plural=(n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 5);",
            6,
            {"plural order"},
        ),
        # Babel's own Arabic header: 100-102 at msgstr[4], 11-99 at msgstr[5].
        (
            "ar",
            "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
            ": n%100>=0 && n%100<=2 ? 4 : 5);",
            6,
            {"plural order"},
        ),
        # A header that agrees with its entries, both one form short.
        ("pl", "nplurals=2; plural=(n != 1);", 2, {"plural count", "plural forms", "plural order"}),
        ("fr", "nplurals=1; plural=0;", 1, {"plural count", "plural forms", "plural order"}),
        # A language the check has not been told about.
        ("de", "nplurals=2; plural=(n != 1);", 2, {"unknown language"}),
    ],
)
def test_the_plural_checks_can_fail(language, plural_forms, forms, wrong):
    po = _catalog(language, plural_forms, _plural_entry(forms))
    report = check_catalog(po, language, Catalog())
    assert {problem[0] for problem in report.problems} == wrong


@pytest.mark.parametrize(
    ("language", "plural_forms", "forms"),
    [
        ("cy", "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 5);", 6),
        (
            "ar",
            "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
            ": n%100>=11 ? 4 : 5);",
            6,
        ),
        (
            "pl",
            "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) "
            "? 1 : 2);",
            3,
        ),
        ("fr", "nplurals=2; plural=(n > 1);", 2),
    ],
)
def test_the_right_plural_headers_pass(language, plural_forms, forms):
    po = _catalog(language, plural_forms, _plural_entry(forms))
    report = check_catalog(po, language, Catalog())
    assert report.problems == []
    assert (report.messages, report.translated, report.plural_entries) == (1, 1, 1)


def test_the_counts_see_fuzzy_untranslated_and_missing_entries():
    entries = (
        '#, fuzzy\nmsgid "Vote"\nmsgstr "Votez"\n\n'
        'msgid "Ballot"\nmsgstr ""\n\n'
        'msgid "Receipt"\nmsgstr "Reçu"\n'
    )
    po = _catalog("fr", "nplurals=2; plural=(n > 1);", entries)
    template = Catalog()
    for msgid in ("Vote", "Ballot", "Receipt", "Quorum"):
        template.add(msgid)
    report = check_catalog(po, "fr", template)
    assert (report.messages, report.translated, report.fuzzy, report.missing) == (3, 1, 1, 1)
    assert {p[0] for p in report.problems} == {"fuzzy", "untranslated", "missing"}


def test_messages_render_in_each_readers_language():
    message = _("Quorum has not been reached, so the meeting cannot decide yet.")
    english = message.render("en")
    french = message.render("fr")
    assert english.startswith("Quorum has not")
    assert french != english and "quorum" in french.lower()
    # A language without a catalog falls back to English ("xx" is no language, so it
    # will never have one).
    assert message.render("xx") == english


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


# Dates in the party's zone (Europe/London) and numbers, written the way each language
# writes them. Babel's CLDR data has every language Harmony ships or is translating,
# catalog or not; the exact strings depend on it (Babel is pinned in pyproject.toml).
SUMMER = datetime(2026, 7, 1, 18, 30, tzinfo=UTC)  # 19:30 in London (BST)
WINTER = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 18:30 in London (GMT)


@pytest.mark.parametrize(
    ("language", "summer", "winter"),
    [
        (
            "cy",
            "Dydd Mercher, 1 Gorffennaf 2026, 19:30 (Amser Haf Prydain)",
            "Dydd Mawrth, 1 Rhagfyr 2026, 18:30 (Amser Safonol Greenwich)",
        ),
        (
            "ar",
            "الأربعاء، 1 يوليو 2026، 7:30 م (توقيت بريطانيا الصيفي)",
            "الثلاثاء، 1 ديسمبر 2026، 6:30 م (توقيت غرينتش)",
        ),
        (
            "pl",
            "środa, 1 lipca 2026 19:30 (Brytyjski czas letni)",
            "wtorek, 1 grudnia 2026 18:30 (czas uniwersalny)",
        ),
        (
            "fr",
            "mercredi 1 juillet 2026, 19:30 (heure d’été britannique)",
            "mardi 1 décembre 2026, 18:30 (heure moyenne de Greenwich)",
        ),
    ],
)
def test_dates_are_london_time_in_each_language(language, summer, winter):
    assert format_datetime(SUMMER, language, "Europe/London") == summer
    assert format_datetime(WINTER, language, "Europe/London") == winter


@pytest.mark.parametrize(
    ("language", "number", "percent"),
    [
        ("en", "1,234,567.5", "88%"),
        ("cy", "1,234,567.5", "88%"),
        ("ar", "1,234,567.5", "88%"),
        ("pl", "1\xa0234\xa0567,5", "88%"),  # a no-break space between thousands
        ("fr", "1\u202f234\u202f567,5", "88\xa0%"),  # a narrow no-break space
    ],
)
def test_numbers_and_percentages_on_pages_follow_the_language(language, number, percent):
    filters = Renderer(party_name="P", timezone="Europe/London").environment(language).filters
    assert filters["number"](1234567.5) == number
    assert filters["percent"](0.875) == percent
