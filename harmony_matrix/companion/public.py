"""The party's public pages: assemblies, meetings, results, petitions, consensus.

Each handler reads the request, calls one read-only use case in
``services/public_record.py`` and renders a page in the reader's language. A private
assembly's pages, and a missing one's, are the same "Page not found" (the services raise
the same :class:`~harmony_matrix.errors.NotFound`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from babel.numbers import format_decimal

from harmony_matrix.companion.charts import Bar, bar_chart
from harmony_matrix.companion.keys import RENDERER, SERVICES
from harmony_matrix.companion.language import chosen_language
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _, _n, babel_locale, isolated, list_of
from harmony_matrix.services import public_record
from harmony_matrix.services.public_record import RoundResult, Score

#: Meeting IDs never contain a dot, so ``M-12.ics`` is the calendar, not a meeting.
REF = "{ref:[^/.]+}"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home, name="public.home")
    app.router.add_get("/assemblies", assemblies, name="public.assemblies")
    app.router.add_get("/assemblies/{slug}", assembly, name="public.assembly")
    app.router.add_get(f"/meetings/{REF}.ics", meeting_calendar, name="public.meeting_ics")
    app.router.add_get(f"/meetings/{REF}", meeting, name="public.meeting")
    app.router.add_get(f"/meetings/{REF}/results", results, name="public.results")
    app.router.add_get(f"/meetings/{REF}/ballots.csv", ballots_csv, name="public.ballots_csv")
    app.router.add_get("/petitions", petitions, name="public.petitions")
    app.router.add_get("/petitions/{ref}", petition, name="public.petition")
    app.router.add_get("/consensus", consensus, name="public.consensus")
    app.router.add_get("/accessibility", accessibility, name="public.accessibility")


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    return request.app[RENDERER].page(request, template, context, language=chosen_language(request))


async def home(request: web.Request) -> web.Response:
    return _page(request, "public/home.html")


async def assemblies(request: web.Request) -> web.Response:
    listed = await public_record.public_assemblies(request.app[SERVICES])
    return _page(request, "public/assemblies.html", assemblies=listed)


async def assembly(request: web.Request) -> web.Response:
    page = await public_record.assembly_page(request.app[SERVICES], request.match_info["slug"])
    return _page(request, "public/assembly.html", assembly=page, phase_label=_phase_label)


async def meeting(request: web.Request) -> web.Response:
    page = await public_record.meeting_page(request.app[SERVICES], request.match_info["ref"])
    return _page(request, "public/meeting.html", meeting=page, phase_label=_phase_label)


async def meeting_calendar(request: web.Request) -> web.Response:
    found = await public_record.meeting_calendar_file(
        request.app[SERVICES], request.match_info["ref"], chosen_language(request)
    )
    return web.Response(
        body=found.content,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{found.name}"'},
    )


async def results(request: web.Request) -> web.Response:
    page = await public_record.results_page(request.app[SERVICES], request.match_info["ref"])
    language = chosen_language(request)
    charts = {r.number: _round_charts(page.ref, r, language) for r in page.rounds if r.counted}
    return _page(
        request, "public/results.html", results=page, charts=charts, phase_label=_phase_label
    )


async def ballots_csv(request: web.Request) -> web.Response:
    found = await public_record.public_ballots(
        request.app[SERVICES], request.match_info["ref"], _round_number(request)
    )
    return web.Response(
        text=found.csv,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{found.name}"'},
    )


def _round_number(request: web.Request) -> int | None:
    text = request.query.get("round")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise InvalidInput(_("The round must be a whole number, like 1."))
    return int(text)


async def petitions(request: web.Request) -> web.Response:
    listed = await public_record.all_petitions(request.app[SERVICES])
    return _page(
        request,
        "public/petitions.html",
        petitions=listed,
        progress_text=public_record.signatures_of_threshold,
        status_label=public_record.petition_status_label,
    )


async def petition(request: web.Request) -> web.Response:
    view = await public_record.petition_page(request.app[SERVICES], request.match_info["ref"])
    return _page(
        request,
        "public/petition.html",
        petition=view,
        progress_text=public_record.signatures_of_threshold(view),
        threshold=public_record.threshold_explained(view),
        status_label=public_record.petition_status_label(view.status),
    )


async def consensus(request: web.Request) -> web.Response:
    page = await public_record.consensus_page(request.app[SERVICES])
    return _page(request, "public/consensus.html", record=page)


async def accessibility(request: web.Request) -> web.Response:
    return _page(request, "public/accessibility.html")


# --- Presentation helpers ------------------------------------------------------------

#: A GOV.UK tag colour per phase: grey before, blue while it runs, green when decided.
PHASE_TAG = {
    "planning": "govuk-tag--grey",
    "discussion": "govuk-tag--blue",
    "debate": "govuk-tag--purple",
    "vote": "govuk-tag--orange",
    "consensus": "govuk-tag--green",
    "cancelled": "govuk-tag--red",
}


def _phase_label(phase: public_record.Phase) -> dict[str, Any]:
    """The govukTag parameters for a phase (its words go through the |message filter)."""
    return {"label": public_record.phase_label(phase), "classes": PHASE_TAG[phase.value]}


def _round_charts(ref: str, round_: RoundResult, language: str) -> dict[str, Any]:
    """The round's totals and runoff as SVG, with their text alternatives in ``language``."""
    number = lambda value: format_decimal(value, locale=babel_locale(language))  # noqa: E731
    listed = lambda scores: list_of(  # noqa: E731
        f"{isolated(score.label)}: {number(score.value)}" for score in scores
    )

    def bars(scores: tuple[Score, ...]) -> list[Bar]:
        return [Bar(s.label, s.value, highlight=s.label == round_.winner) for s in scores]

    charts: dict[str, Any] = {
        "totals": bar_chart(
            bars(round_.totals),
            chart_id=f"totals-{round_.number}",
            title=_(
                "Total scores in round %(round)s of %(ref)s", round=round_.number, ref=ref
            ).render(language),
            description=_(
                "A bar chart of each option's total score: %(scores)s.",
                scores=listed(round_.totals),
            ).render(language),
            value_text=[number(s.value) for s in round_.totals],
        )
    }
    if round_.runoff:
        charts["runoff"] = bar_chart(
            bars(round_.runoff),
            chart_id=f"runoff-{round_.number}",
            title=_(
                "The runoff in round %(round)s of %(ref)s", round=round_.number, ref=ref
            ).render(language),
            description=_n(
                "A bar chart of how many ballots scored each finalist higher: %(scores)s. "
                "%(count)s ballot scored them the same.",
                "A bar chart of how many ballots scored each finalist higher: %(scores)s. "
                "%(count)s ballots scored them the same.",
                round_.runoff_equal,
                scores=listed(round_.runoff),
            ).render(language),
            value_text=[number(s.value) for s in round_.runoff],
        )
    return charts
