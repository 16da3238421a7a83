"""Assemblies as TOML: one ``[[assembly]]`` table each, with the fields of the public page.

```toml
[[assembly]]
slug = "operational-working-group"
name = "Operational Working Group"
subtitle = "Helping Harmony work (and play!)"
about = "This umbrella assembly is responsible ..."
purpose = "This assembly maintains the constitution ..."
composition = "All Harmony participants are automatically a member of this assembly."
reference = "HPUK-ASSE-2025-09-4"   # optional: made from the creation date if missing
kind = "working_group"               # working_group, committee, society, other
visibility = "public"                # or private
open = true
parent = "another-slug"              # optional: the umbrella assembly it belongs to
automatic_membership = "everyone"    # none, everyone, members
own_quorum = "20%"                   # optional; at least 15%
remits = [{ topic = "constitution", fallback = "secretarial-committee" }]
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, TypeVar

from harmony_matrix.config import parse_share
from harmony_matrix.constitution.interpretations import FIFTEEN_PERCENT
from harmony_matrix.errors import HarmonyError, InvalidInput
from harmony_matrix.i18n import Message, _, any_of
from harmony_matrix.importers.limits import check_length
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyKind,
    AutomaticMembership,
    Remit,
    Visibility,
)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REFERENCE = re.compile(
    r"^(?P<prefix>[A-Z0-9]+)-ASSE-(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])-[0-9]+$"
)
FIELDS = {
    "slug", "name", "subtitle", "about", "purpose", "composition", "reference", "kind",
    "visibility", "open", "parent", "automatic_membership", "own_quorum", "remits",
}  # fmt: skip


@dataclass(frozen=True)
class RemitSpec:
    topic: str
    fallback: str | None


@dataclass(frozen=True)
class AssemblySpec:
    slug: str
    name: str
    subtitle: str
    about: str
    purpose: str
    composition: str
    reference: str | None
    kind: AssemblyKind
    visibility: Visibility
    is_open: bool
    parent: str | None
    automatic_membership: AutomaticMembership
    own_quorum_percent: int | None
    remits: tuple[RemitSpec, ...]
    #: Its position in the file (the first [[assembly]] is 1), for reports.
    entry: int = 0


@dataclass(frozen=True)
class EntryProblem:
    entry: int
    key: str
    reason: Message


def parse_assemblies(text: str, prefix: str) -> tuple[list[AssemblySpec], list[EntryProblem]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(_("This is not valid TOML: %(reason)s", reason=str(error))) from error
    entries = document.get("assembly")
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(_("The file has no [[assembly]] entries."))
    specs: list[AssemblySpec] = []
    problems: list[EntryProblem] = []
    seen: set[str] = set()
    # Unique columns are checked across the file here, and against the database by the
    # service, so that a dry run reports them (not the database when writing).
    references: dict[str, int] = {}
    topics: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        key = str(entry.get("slug", "")) if isinstance(entry, dict) else ""
        try:
            spec = replace(parse_entry(entry, prefix), entry=index)
            if spec.slug in seen:
                raise InvalidInput(_("The slug “%(slug)s” appears twice.", slug=spec.slug))
            if spec.reference is not None and spec.reference in references:
                raise InvalidInput(
                    _(
                        "The reference “%(reference)s” is already used by entry #%(entry)s.",
                        reference=spec.reference,
                        entry=references[spec.reference],
                    )
                )
            for remit in spec.remits:
                if remit.topic in topics:
                    raise InvalidInput(
                        _(
                            "The remit “%(topic)s” is already in entry #%(entry)s.",
                            topic=remit.topic,
                            entry=topics[remit.topic],
                        )
                    )
        except HarmonyError as error:
            problems.append(EntryProblem(index, key, error.message))
            continue
        seen.add(spec.slug)
        if spec.reference is not None:
            references[spec.reference] = index
        topics.update((remit.topic, index) for remit in spec.remits)
        specs.append(spec)
    return specs, problems


def parse_entry(entry: Any, prefix: str) -> AssemblySpec:
    if not isinstance(entry, dict):
        raise InvalidInput(_("Each [[assembly]] must be a table."))
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown fields: %(fields)s.", fields=", ".join(unknown)))
    slug = _text(entry, "slug", required=True)
    check_length(slug, Assembly.slug, "slug")
    if not SLUG.match(slug):
        raise InvalidInput(
            _(
                "The slug “%(slug)s” must use lower-case letters, digits and hyphens, "
                "like operational-working-group.",
                slug=slug,
            )
        )
    reference = _text(entry, "reference") or None
    if reference is not None:
        check_length(reference, Assembly.reference, "reference")
        match = REFERENCE.match(reference)
        if not match:
            raise InvalidInput(
                _(
                    "The reference “%(reference)s” must look like %(example)s.",
                    reference=reference,
                    example=f"{prefix}-ASSE-2025-09-4",
                )
            )
        if match.group("prefix") != prefix:
            raise InvalidInput(
                _(
                    "The reference “%(reference)s” must start with the party's prefix %(prefix)s.",
                    reference=reference,
                    prefix=prefix,
                )
            )
    own_quorum = entry.get("own_quorum")
    percent: int | None = None
    if own_quorum is not None:
        percent = _percent(own_quorum)
    remits = entry.get("remits", [])
    if not isinstance(remits, list) or not all(isinstance(item, dict) for item in remits):
        raise InvalidInput(_("remits must be a list of {topic = ..., fallback = ...} tables."))
    topics = [_text(item, "topic", required=True) for item in remits]
    for topic in topics:
        check_length(topic, Remit.topic, "topic")
        if topics.count(topic) > 1:
            raise InvalidInput(_("The remit “%(topic)s” appears twice.", topic=topic))
    open_value = entry.get("open", True)
    if not isinstance(open_value, bool):
        raise InvalidInput(_("open must be true or false."))
    name = _text(entry, "name", required=True)
    check_length(name, Assembly.name, "name")
    subtitle = _text(entry, "subtitle")
    check_length(subtitle, Assembly.subtitle, "subtitle")
    return AssemblySpec(
        slug=slug,
        name=name,
        subtitle=subtitle,
        about=_text(entry, "about"),
        purpose=_text(entry, "purpose"),
        composition=_text(entry, "composition"),
        reference=reference,
        kind=_choice(entry, "kind", AssemblyKind, AssemblyKind.WORKING_GROUP),
        visibility=_choice(entry, "visibility", Visibility, Visibility.PUBLIC),
        is_open=open_value,
        parent=_text(entry, "parent") or None,
        automatic_membership=_choice(
            entry, "automatic_membership", AutomaticMembership, AutomaticMembership.NONE
        ),
        own_quorum_percent=percent,
        remits=tuple(
            RemitSpec(
                topic=_text(item, "topic", required=True),
                fallback=_text(item, "fallback") or None,
            )
            for item in remits
        ),
    )


def _text(entry: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise InvalidInput(_("%(field)s must be text.", field=key))
    value = value.strip()
    if required and not value:
        raise InvalidInput(_("%(field)s is required.", field=key))
    return value


_Choice = TypeVar("_Choice", AssemblyKind, Visibility, AutomaticMembership)


def _choice(
    entry: dict[str, Any], key: str, enum_class: type[_Choice], default: _Choice
) -> _Choice:
    value = entry.get(key)
    if value is None:
        return default
    try:
        return enum_class(str(value))
    except ValueError as error:
        raise InvalidInput(
            _(
                "%(field)s “%(value)s” is not known; use %(choices)s.",
                field=key,
                value=value,
                choices=any_of(member.value for member in enum_class),
            )
        ) from error


def _percent(value: object) -> int:
    try:
        share = parse_share(f"{value}%" if isinstance(value, int) else value)
    except (ValueError, ZeroDivisionError) as error:
        raise InvalidInput(_("own_quorum “%(value)s” is not a percentage.", value=value)) from error
    if share < FIFTEEN_PERCENT or share > 1 or (share * 100).denominator != 1:
        raise InvalidInput(
            _(
                "own_quorum must be a whole percentage from 15%% to 100%% "
                "(the constitution: “must be at least 15%%”); got %(value)s.",
                value=value,
            )
        )
    return int(Fraction(share * 100))
