"""The meeting process: five preparation steps, then discussion, debate and the vote."""

from __future__ import annotations

import enum
from collections.abc import Collection
from datetime import datetime, timedelta

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import Message, _, _n, format_datetime, join, list_of, localised


class PreparationStep(enum.StrEnum):
    """Clause: "the method for gaining Consensus throughout the Party is the same"."""

    #: "first, any relevant Officers ... collect relevant factual data to the matter"
    FACTS = "facts"
    #: "second, the relevant Secretary ... inform all potentially interested Parties"
    INFORMED = "informed"
    #: "third, materials must be prepared - digital or physical"
    MATERIALS = "materials"
    #: "fourth, a date must be set for the Thing or Moot"
    DATE_SET = "date_set"
    #: "fifth, the actual Moot or Thing itself must be held"
    HELD = "held"


BEFORE_OPENING = (
    PreparationStep.FACTS,
    PreparationStep.INFORMED,
    PreparationStep.MATERIALS,
    PreparationStep.DATE_SET,
)


class Phase(enum.StrEnum):
    """Clause: "A Moot, or Thing, shall consist of the following phases once in action"."""

    PLANNING = "planning"
    DISCUSSION = "discussion"
    DEBATE = "debate"
    VOTE = "vote"
    CONSENSUS = "consensus"
    CANCELLED = "cancelled"


FINISHED = frozenset({Phase.CONSENSUS, Phase.CANCELLED})


class NoticeItem(enum.StrEnum):
    """What the notice to eligible members says about where and when.

    Clause: "clear communication of time, date, and location with available support
    materials for those who may struggle to plan routes and journeys", with "proper
    provisions ... to enable the disabled to attend". A change to any of them needs a
    new notice.
    """

    WHEN = "when"
    PLACE = "place"
    ONLINE = "online"
    ACCESS = "access"
    ROUTE = "route"


def notice_item_name(item: NoticeItem) -> Message:
    return {
        NoticeItem.WHEN: _("the date and time"),
        NoticeItem.PLACE: _("the place"),
        NoticeItem.ONLINE: _("the online link"),
        NoticeItem.ACCESS: _("the accessibility provisions"),
        NoticeItem.ROUTE: _("the help with routes"),
    }[item]


def step_name(step: PreparationStep) -> Message:
    return {
        PreparationStep.FACTS: _("facts collected"),
        PreparationStep.INFORMED: _("eligible members informed"),
        PreparationStep.MATERIALS: _("materials prepared"),
        PreparationStep.DATE_SET: _("date set"),
        PreparationStep.HELD: _("meeting held"),
    }[step]


def phase_state(phase: Phase) -> Message:
    """Where the meeting is, as a whole sentence (translators need whole sentences)."""
    return {
        Phase.PLANNING: _("The meeting is still being planned."),
        Phase.DISCUSSION: _("The meeting is in its discussion phase."),
        Phase.DEBATE: _("The meeting is in its debate phase."),
        Phase.VOTE: _("The meeting is voting."),
        Phase.CONSENSUS: _("The meeting has reached consensus."),
        Phase.CANCELLED: _("The meeting was cancelled."),
    }[phase]


def _require_phase(current: Phase, allowed: Collection[Phase], rule: Message) -> None:
    """Refuse with the rule that applies and where the meeting is now."""
    if current not in allowed:
        raise RuleViolation(join([rule, phase_state(current)], separator=" "))


def check_preparation(current: Phase) -> None:
    """Preparation is recorded while planning; it may be added to until the vote."""
    _require_phase(
        current,
        (Phase.PLANNING, Phase.DISCUSSION, Phase.DEBATE),
        _("Preparation is recorded before the vote begins."),
    )


def check_can_open(
    current: Phase,
    done: Collection[PreparationStep],
    rules: Rules,
    *,
    changed_since_notice: Collection[NoticeItem],
    now: datetime,
    starts_at: datetime | None,
    timezone: str,
) -> None:
    """Opening the meeting (the fifth step) starts the discussion phase.

    The first four steps come first: the constitution lists them as the method
    "regardless of the type of meeting". Members must also have been told the date,
    time, place, link and provisions as they now stand ("clear communication of time,
    date, and location"): a notice sent before any of them changed is not enough.
    ``rules.require_preparation`` turns these checks off. The announced start is kept
    either way: a meeting is held on "the planned day of the Thing or Moot".
    """
    _require_phase(
        current, (Phase.PLANNING,), _("A meeting is opened once, when its planning is done.")
    )
    if rules.require_preparation:
        missing = [step for step in BEFORE_OPENING if step not in done]
        if missing:
            raise RuleViolation(
                _(
                    "The meeting cannot open yet. Still to do: %(steps)s.",
                    steps=list_of(step_name(step) for step in missing),
                )
            )
    check_notice_current(changed_since_notice, rules, continuation=False)
    check_started(now, starts_at, rules, timezone)


def check_notice_current(
    changed_since_notice: Collection[NoticeItem], rules: Rules, *, continuation: bool
) -> None:
    """Everyone eligible was told of the notice as it stands: before the meeting opens,
    and before a vote continued on a later date begins ("the debate and vote phases
    shall be repeated, if necessary at a later date": the later date is announced like
    the first). Off with ``rules.require_preparation``, like the other steps."""
    if not rules.require_preparation or not changed_since_notice:
        return
    changed = list_of(notice_item_name(item) for item in NoticeItem if item in changed_since_notice)
    if continuation:
        raise RuleViolation(
            _(
                "Eligible members were informed before these changed: %(changed)s. Inform "
                "them again before the vote continues.",
                changed=changed,
            )
        )
    raise RuleViolation(
        _(
            "Eligible members were informed before these changed: %(changed)s. Inform "
            "them again before the meeting opens.",
            changed=changed,
        )
    )


def check_started(now: datetime, starts_at: datetime | None, rules: Rules, timezone: str) -> None:
    """Nothing begins before its announced start, less ``rules.opening_margin_minutes``.

    Clause: members are informed "on the planned day of the Thing or Moot"; a meeting
    that opened and decided days before it would decide without them. Without a date
    (preparation recorded elsewhere) there is nothing to wait for.
    """
    if starts_at is None:
        return
    margin = rules.opening_margin_minutes
    if now < starts_at - timedelta(minutes=margin):
        raise RuleViolation(
            _n(
                "It is too early: the meeting is announced for %(when)s and may begin at "
                "most %(count)s minute before then.",
                "It is too early: the meeting is announced for %(when)s and may begin at "
                "most %(count)s minutes before then.",
                margin,
                when=localised(lambda language: format_datetime(starts_at, language, timezone)),
            )
        )


def check_can_follow_on(earlier: Phase, earlier_ref: str) -> None:
    """Clause: a Thing or Moot "may also arise as a result of the determination of a
    previous Thing or Moot". Only a meeting that determined something (reached
    consensus) can lead to another; any assembly's, any kind of meeting."""
    if earlier is not Phase.CONSENSUS:
        raise RuleViolation(
            join(
                [
                    _(
                        "Meeting %(ref)s has not reached consensus, so no meeting can "
                        "follow from its decision.",
                        ref=earlier_ref,
                    ),
                    phase_state(earlier),
                ],
                separator=" ",
            )
        )


def check_can_suggest(current: Phase) -> None:
    """Clauses: the discussion phase should "allow people to offer suggestions or
    solutions, and all such suggestions or solutions should be written down"; in the
    debate phase "people who wish to put forward concrete suggestions, or groups of
    same, may do so", and the moderator collates them into options."""
    _require_phase(
        current,
        (Phase.DISCUSSION, Phase.DEBATE),
        _("Suggestions are made during the discussion and the debate."),
    )


def check_can_debate(current: Phase) -> None:
    """Clause: "second, the debate phase" follows the discussion phase; a meeting whose
    vote had no clear winner also comes back here."""
    _require_phase(current, (Phase.DISCUSSION,), _("The debate begins after the discussion."))


def check_can_edit_options(current: Phase) -> None:
    """Clause: the debate phase lets "the moderator ... collate all of the ideas into
    brief descriptions" and positions "consolidate or compromise ... to reduce the total
    options available"."""
    _require_phase(current, (Phase.DEBATE,), _("Options are changed during the debate."))


def after_debate(
    current: Phase, active_options: int, quorum_reached: bool, originator_present: bool
) -> Phase:
    """Where the debate leads.

    Clauses: "in the event of two or more options: the responsible Secretary will prepare
    ballots"; "where there is only one option, Consensus is obtained". A decision needs a
    quorate gathering (a Moot or Thing is "any gathering which obtains quorum"), and "The
    originator of any petition must be present".
    """
    _require_phase(current, (Phase.DEBATE,), _("Only a debate in progress can be ended."))
    if active_options == 0:
        raise RuleViolation(_("There are no options yet. Add at least one option first."))
    check_decision_allowed(quorum_reached, originator_present)
    return Phase.CONSENSUS if active_options == 1 else Phase.VOTE


def check_decision_allowed(quorum_reached: bool, originator_present: bool) -> None:
    if not quorum_reached:
        raise RuleViolation(_("Quorum has not been reached, so the meeting cannot decide yet."))
    if not originator_present:
        raise RuleViolation(
            _("The originator of the petition must be present before the meeting decides.")
        )


def after_vote(current: Phase, clear_winner: bool) -> Phase:
    """Clauses: "In the event of a ballot, the winner of the vote is Consensus"; "Should
    there be no clear winner, the debate and vote phases shall be repeated"."""
    _require_phase(
        current, (Phase.VOTE,), _("Only a meeting that is voting can conclude its vote.")
    )
    return Phase.CONSENSUS if clear_winner else Phase.DEBATE


def check_can_cancel(current: Phase) -> None:
    if current in FINISHED:
        raise RuleViolation(_("This meeting has already finished."))
