"""Check every catalog in locales/ and print its counts: messages, translated, plural
entries, fuzzy, missing.

``./dev test`` prints this table before the test suite (the counts are what issue 12's
note quotes); tests/test_i18n.py runs the same checks and fails on any problem. Run it on
its own while translating: ``.venv/bin/python scripts/check_catalogs.py`` (exit status 1
when a catalog has a problem, with each problem listed).

The plural forms are checked against what each language needs, written down here, and
not against the catalog's own header: a header with the wrong count or the wrong order
would otherwise pass with every entry matching it. Two traps this catches: ``pybabel
init -l cy`` writes five Welsh forms with no zero, and Babel's Arabic header puts 100-102
before 11-99, unlike GNU gettext and Weblate.
"""

from __future__ import annotations

import gettext
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"

#: The CLDR plural categories of each language, in the order of its msgstr[0], [1]...
#: The length is the number of forms each plural entry must have. A new language is
#: added here on purpose (its catalog fails the check until then). A CLDR category
#: missing from a list (French "many", for numbers like 1000000; Polish "other", for
#: fractions) is written with the list's last form.
PLURAL_ORDER: dict[str, tuple[str, ...]] = {
    "cy": ("zero", "one", "two", "few", "many", "other"),
    # The usual GNU gettext/Weblate order: 11-99 ("many") before 100-102 ("other").
    "ar": ("zero", "one", "two", "few", "many", "other"),
    "pl": ("one", "few", "many"),
    "fr": ("one", "other"),
}

#: The numbers each header's plural expression is tried with: every category of the
#: languages above, with its edges (Arabic 3-10 and 11-99 repeat in every hundred).
SAMPLE_NUMBERS = (*range(0, 250), 1001, 1011, 1099, 1100, 1102)

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass
class CatalogReport:
    """One language's counts, and every problem found in its catalog."""

    language: str
    messages: int = 0
    translated: int = 0
    plural_entries: int = 0
    fuzzy: int = 0
    missing: int = 0
    problems: list[tuple[str, ...]] = field(default_factory=list)


def expected_plural_forms(language: str) -> int | None:
    """How many plural forms ``language`` needs; None for a language not listed yet."""
    order = PLURAL_ORDER.get(language)
    return len(order) if order else None


def plural_problems(language: str, nplurals: int, expression: str) -> list[tuple[str, ...]]:
    """What is wrong with a catalog's ``Plural-Forms`` header for ``language``: the wrong
    count, or an expression that sends a number to another category's form."""
    order = PLURAL_ORDER.get(language)
    if order is None:
        return [("unknown language", language, "add its plural forms to PLURAL_ORDER")]
    problems: list[tuple[str, ...]] = []
    if nplurals != len(order):
        problems.append(("plural count", f"{nplurals} in the header, {len(order)} needed"))
    try:
        form_of: Callable[[int], int] = gettext.c2py(expression)
    except (ValueError, SyntaxError) as error:
        return [*problems, ("plural expression", expression, str(error))]
    locale = Locale.parse(language)
    for number in SAMPLE_NUMBERS:
        category = locale.plural_form(number)
        wanted = order.index(category) if category in order else len(order) - 1
        if form_of(number) != wanted:
            problems.append(
                (
                    "plural order",
                    f"{number} ({category}) gets msgstr[{form_of(number)}], not msgstr[{wanted}]",
                )
            )
            break  # one wrong number says it; the rest would repeat it
    return problems


def same_placeholders(msgid: str | tuple[str, ...], strings: Iterable[str]) -> bool:
    """Babel's checker lets a translation drop a named placeholder; we do not, except
    ``count`` in a plural form (French writes "une signature", not "1 signature")."""
    strings = tuple(strings)
    ids = msgid if isinstance(msgid, tuple) else (msgid,)
    wanted = set().union(*(set(PLACEHOLDER.findall(i)) for i in ids))
    if isinstance(msgid, tuple):
        found = set().union(*(set(PLACEHOLDER.findall(s)) for s in strings))
        return wanted - {"count"} <= found <= wanted
    return set(PLACEHOLDER.findall(strings[0])) == wanted


def fresh_template() -> Catalog:
    """The messages of the code as it is now, extracted as ``./dev messages`` does."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "messages.pot"
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


def read_catalog(path: Path, language: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def check_catalog(po: Catalog, language: str, template: Catalog) -> CatalogReport:
    """Count ``po``'s entries and list its problems against ``template`` (a fresh
    extraction): untranslated, fuzzy, wrong plural count or order, Babel's checks, lost
    placeholders, msgids missing."""
    report = CatalogReport(language)
    report.problems.extend(plural_problems(language, po.num_plurals, po.plural_expr))
    needed = expected_plural_forms(language)
    for message in po:
        if not message.id:
            continue
        report.messages += 1
        report.problems.extend(_entry_problems(message, po, needed))
        strings = _strings(message)
        if isinstance(message.id, tuple):
            report.plural_entries += 1
        if message.fuzzy:
            report.fuzzy += 1
        elif all(strings):
            report.translated += 1
    missing = [m.id for m in template if m.id and m.id not in po]
    report.missing = len(missing)
    report.problems.extend(("missing", _text(msgid)) for msgid in missing)
    return report


def _entry_problems(message: Message, po: Catalog, needed: int | None) -> list[tuple[str, ...]]:
    strings = _strings(message)
    problems: list[tuple[str, ...]] = []
    msgid = _text(message.id)
    if message.fuzzy:
        problems.append(("fuzzy", msgid))
    if isinstance(message.id, tuple) and needed is not None and len(strings) != needed:
        problems.append(("plural forms", msgid, f"{len(strings)}, not {needed}"))
    if not all(strings):
        problems.append(("untranslated", msgid))
    problems.extend(("check", msgid, str(error)) for error in message.check(po))
    if not same_placeholders(message.id, strings):
        problems.append(("placeholders", msgid))
    return problems


def _strings(message: Message) -> tuple[str, ...]:
    string = message.string
    return tuple(string) if isinstance(string, (tuple, list)) else (string,)


def _text(msgid: str | tuple[str, ...]) -> str:
    return msgid[0] if isinstance(msgid, tuple) else msgid


def catalog_languages() -> list[str]:
    return sorted(path.parent.parent.name for path in LOCALES.glob("*/LC_MESSAGES/messages.po"))


def check_all(template: Catalog | None = None) -> list[CatalogReport]:
    template = template if template is not None else fresh_template()
    return [
        check_catalog(
            read_catalog(LOCALES / language / "LC_MESSAGES" / "messages.po", language),
            language,
            template,
        )
        for language in catalog_languages()
    ]


def table(reports: Iterable[CatalogReport], template: Catalog) -> str:
    """The counts, one line a language; English is the extraction itself."""
    source = [m for m in template if m.id]
    rows = [
        ("language", "messages", "translated", "plural", "fuzzy", "missing", "problems"),
        ("en", len(source), len(source), sum(isinstance(m.id, tuple) for m in source), 0, 0, 0),
    ]
    rows += [
        (
            r.language,
            r.messages,
            r.translated,
            r.plural_entries,
            r.fuzzy,
            r.missing,
            len(r.problems),
        )
        for r in reports
    ]
    return "\n".join(
        "  ".join(str(cell).rjust(10) if i else str(cell).ljust(8) for i, cell in enumerate(row))
        for row in rows
    )


def main() -> int:
    template = fresh_template()
    reports = check_all(template)
    print("Catalogs (locales/*/LC_MESSAGES/messages.po):")
    print(table(reports, template))
    failed = False
    for report in reports:
        for problem in report.problems[:20]:
            print(f"  {report.language}: " + " | ".join(problem))
        if len(report.problems) > 20:
            print(f"  {report.language}: ... and {len(report.problems) - 20} more problems")
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
