"""The domain model (DESIGN.md section 3) as typed SQLAlchemy 2.0 ORM classes.

Rules live in ``constitution/``; these classes only hold data. Enumerations are shared
with the rules so that the database and the rules cannot disagree about a value.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.storage.types import UTCDateTime, text_enum

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class AssemblyKind(enum.StrEnum):
    WORKING_GROUP = "working_group"
    COMMITTEE = "committee"
    SOCIETY = "society"
    OTHER = "other"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class AutomaticMembership(enum.StrEnum):
    """Who belongs to an assembly without being listed ("All Party participants are
    automatically considered members of this assembly")."""

    NONE = "none"
    #: every Member and Participant of the party
    EVERYONE = "everyone"
    #: every full Member of the party
    MEMBERS = "members"


class Role(enum.StrEnum):
    MEMBER = "member"
    SECRETARY = "secretary"
    MODERATOR = "moderator"


class Trigger(enum.StrEnum):
    """Clause: how a Moot or Thing comes about."""

    GATHERING = "gathering"
    PETITION = "petition"
    EARLIER_DECISION = "earlier_decision"


class MeetingMode(enum.StrEnum):
    ONLINE = "online"
    IN_PERSON = "in_person"
    HYBRID = "hybrid"


class OptionStatus(enum.StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    WITHDRAWN = "withdrawn"


class PetitionStatus(enum.StrEnum):
    OPEN = "open"
    REACHED = "reached"
    CLOSED = "closed"


class ConsensusMethod(enum.StrEnum):
    SINGLE_OPTION = "single_option"
    STAR_BALLOT = "star_ballot"


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Any homeserver: members join from across the federation.
    matrix_id: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(text_enum(Status))
    suspended_from: Mapped[datetime | None]
    suspended_until: Mapped[datetime | None]
    language: Mapped[str] = mapped_column(String(16), default="en")
    created_at: Mapped[datetime]
    last_active_at: Mapped[datetime | None]

    memberships: Mapped[list[AssemblyMembership]] = relationship(back_populates="person")


class Assembly(Base):
    __tablename__ = "assemblies"
    __table_args__ = (
        CheckConstraint(
            "own_quorum_percent IS NULL "
            "OR (own_quorum_percent >= 15 AND own_quorum_percent <= 100)",
            name="own_quorum_at_least_15",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    subtitle: Mapped[str] = mapped_column(String(300), default="")
    about: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    composition: Mapped[str] = mapped_column(Text, default="")
    #: Decidim's format PREFIX-ASSE-YYYY-MM-ID, e.g. HPUK-ASSE-2025-09-4.
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[AssemblyKind] = mapped_column(text_enum(AssemblyKind))
    visibility: Mapped[Visibility] = mapped_column(text_enum(Visibility))
    is_open: Mapped[bool]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("assemblies.id"))
    automatic_membership: Mapped[AutomaticMembership] = mapped_column(
        text_enum(AutomaticMembership)
    )
    #: The assembly's own quorum as a whole percentage; the constitution forbids < 15.
    own_quorum_percent: Mapped[int | None]
    matrix_room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]

    parent: Mapped[Assembly | None] = relationship(remote_side=[id])
    remits: Mapped[list[Remit]] = relationship(
        back_populates="assembly", foreign_keys="Remit.assembly_id"
    )


class Remit(Base):
    """A topic an assembly leads on, and who may lead if it declines ("if the DAS
    declines to take the lead on an issue, the Policy Society for Disability may")."""

    __tablename__ = "remits"

    id: Mapped[int] = mapped_column(primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"))
    topic: Mapped[str] = mapped_column(String(200), unique=True)
    fallback_assembly_id: Mapped[int | None] = mapped_column(ForeignKey("assemblies.id"))

    assembly: Mapped[Assembly] = relationship(back_populates="remits", foreign_keys=[assembly_id])
    fallback: Mapped[Assembly | None] = relationship(foreign_keys=[fallback_assembly_id])


class AssemblyMembership(Base):
    __tablename__ = "assembly_memberships"
    __table_args__ = (UniqueConstraint("person_id", "assembly_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"))
    role: Mapped[Role] = mapped_column(text_enum(Role))
    since: Mapped[datetime]
    until: Mapped[datetime | None]

    person: Mapped[Person] = relationship(back_populates="memberships")
    assembly: Mapped[Assembly] = relationship()


class AssemblyActivity(Base):
    """When a person last spoke, attended or voted in an assembly (interpretation 1)."""

    __tablename__ = "assembly_activity"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"), primary_key=True)
    last_active_at: Mapped[datetime]


class Office(Base):
    """A party office such as the General Secretary."""

    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    since: Mapped[datetime]
    until: Mapped[datetime | None]


class Unavailability(Base):
    """A day a person has said they cannot attend (used for petition originators)."""

    __tablename__ = "unavailability"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MeetingKind] = mapped_column(text_enum(MeetingKind))
    question: Mapped[str] = mapped_column(Text)
    trigger: Mapped[Trigger] = mapped_column(text_enum(Trigger))
    originator_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    petition_id: Mapped[int | None] = mapped_column(ForeignKey("petitions.id"))
    earlier_meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    called_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    planning_triggered_at: Mapped[datetime]
    starts_at: Mapped[datetime | None]
    mode: Mapped[MeetingMode | None] = mapped_column(text_enum(MeetingMode))
    place: Mapped[str] = mapped_column(Text, default="")
    online_url: Mapped[str] = mapped_column(Text, default="")
    accessibility: Mapped[str] = mapped_column(Text, default="")
    route_help: Mapped[str] = mapped_column(Text, default="")
    #: Required and published when the date is beyond the 14/21-day limit.
    schedule_explanation: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[Phase] = mapped_column(text_enum(Phase))
    #: Counts the votes held; "no clear winner" sends the meeting back to debate and a
    #: later vote is the next round.
    vote_round: Mapped[int] = mapped_column(default=0)
    matrix_room_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    #: What the meeting decides about, as a remit topic ("disability"): a Moot of the
    #: assembly leading on it produces Party Consensus (services/remits.py).
    topic: Mapped[str | None] = mapped_column(String(200))
    #: A Party Thing on a topic some assembly leads on: the General Secretary was told.
    remit_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())

    assemblies: Mapped[list[Assembly]] = relationship(
        secondary="meeting_assemblies", lazy="selectin", order_by="Assembly.id"
    )
    #: A Thing of Assemblies: which involved assemblies' secretaries have agreed to it.
    agreements: Mapped[list[ThingAgreement]] = relationship(
        lazy="selectin", order_by="ThingAgreement.assembly_id"
    )


class ThingAgreement(Base):
    """An involved assembly agreed to a Thing of Assemblies ("the relevant ...
    Secretaries"): through one of its secretaries, or the General Secretary."""

    __tablename__ = "thing_agreements"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"), primary_key=True)
    #: Empty for the operator, and for Things called before agreement was recorded.
    agreed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    agreed_at: Mapped[datetime]


class RemitDecline(Base):
    """An assembly declined to take the lead on a topic ("if the DAS declines to take
    the lead on an issue"): for every meeting on it, or for one meeting."""

    __tablename__ = "remit_declines"

    id: Mapped[int] = mapped_column(primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"))
    topic: Mapped[str] = mapped_column(String(200))
    #: Empty: the topic as a whole; else only that meeting's question.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    declined_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    declined_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")


class MeetingAssembly(Base):
    __tablename__ = "meeting_assemblies"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("assemblies.id"), primary_key=True)
    #: The assembly's active population when the meeting opened: the quorum is fixed
    #: then, so people arriving (and so becoming active) do not move the target.
    active_population: Mapped[int | None]


class PreparationRecord(Base):
    """One of the five preparation steps, who did it, when, and any note."""

    __tablename__ = "preparation_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    step: Mapped[PreparationStep] = mapped_column(text_enum(PreparationStep))
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    done_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")


class Attendance(Base):
    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    at: Mapped[datetime]


class Suggestion(Base):
    """Written down in the discussion phase, numbered within the meeting."""

    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("meeting_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    number: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]


class Option(Base):
    """A concrete option of the debate phase, numbered within the meeting."""

    __tablename__ = "options"
    __table_args__ = (UniqueConstraint("meeting_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    number: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[OptionStatus] = mapped_column(text_enum(OptionStatus))
    #: The option this one was consolidated into.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("options.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]


class OptionSuggestion(Base):
    """Which discussion suggestions an option collates."""

    __tablename__ = "option_suggestions"

    option_id: Mapped[int] = mapped_column(ForeignKey("options.id"), primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id"), primary_key=True)


class Petition(Base):
    __tablename__ = "petitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    originator_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    opened_at: Mapped[datetime]
    #: Non-suspended Members when the petition opened, and 15% of them rounded up.
    members_at_opening: Mapped[int]
    threshold: Mapped[int]
    status: Mapped[PetitionStatus] = mapped_column(text_enum(PetitionStatus))
    reached_at: Mapped[datetime | None]
    #: The room it was started in: told when it reaches its threshold.
    matrix_room_id: Mapped[str | None] = mapped_column(String(255))


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("petition_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    signed_at: Mapped[datetime]


class BallotRoundStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class BallotRound(Base):
    """One secret STAR ballot of a meeting; "no clear winner" leads to another round."""

    __tablename__ = "ballot_rounds"
    __table_args__ = (UniqueConstraint("meeting_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    number: Mapped[int]
    #: The options as they stood when the ballot opened: [{"number": 1, "text": "..."}].
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[BallotRoundStatus] = mapped_column(text_enum(BallotRoundStatus))
    opened_at: Mapped[datetime]
    #: Announced when it opens; links work until then, and it cannot close earlier
    #: unless everyone has voted.
    closes_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    #: The STAR result (voting/star.py to_json), stored when the round closes.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Ballots are sealed to this X25519 public key while the round is open; its private
    #: key is never in the database (storage/key_store.py) and is destroyed at the close.
    seal_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    #: When the close's clean-up (key destroyed, ballot tables rewritten) was verified;
    #: empty while it is still to do (services/ballot_cleanup.py).
    cleaned_at: Mapped[datetime | None]
    #: Ballots held on paper and entered by an organiser (services/paper_votes.py):
    #: counted and published like online ones, but nobody had a link.
    on_paper: Mapped[bool] = mapped_column(default=False, server_default=false())


class VotingRight(Base):
    """A person's right to cast one ballot in a round.

    It holds only a hash of the random token in the person's link, and is never changed
    when the ballot is cast: nothing here says whether, when or how the person voted.
    """

    __tablename__ = "voting_rights"
    __table_args__ = (UniqueConstraint("round_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ballot_rounds.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    #: SHA-256 of the token, written once, when the homeserver has accepted the message
    #: with the link (services/ballot_delivery.py); empty until then. Never replaced.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class SpentToken(Base):
    """A token that has been used, under a second hash that cannot be matched to a right
    without the token itself. Its primary key makes a second use store nothing.
    Deleted when the round closes."""

    __tablename__ = "spent_tokens"
    __table_args__ = ({"sqlite_with_rowid": False},)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ballot_rounds.id"))


class SealedBallot(Base):
    """A ballot of an open round: a random id and its receipt and scores sealed to the
    round's key (voting/sealing.py). No person, no time, nothing in clear. Deleted when
    the round is counted."""

    __tablename__ = "sealed_ballots"
    __table_args__ = ({"sqlite_with_rowid": False},)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ballot_rounds.id"))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class CountedBallot(Base):
    """A ballot of a closed round, as published: written by the close in a random order,
    with a random id, its receipt and its scores."""

    __tablename__ = "counted_ballots"
    __table_args__ = ({"sqlite_with_rowid": False},)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ballot_rounds.id"), index=True)
    receipt: Mapped[str] = mapped_column(String(32))
    #: Scores 0-5 in the order of the round's options.
    scores: Mapped[list[int]] = mapped_column(JSON)


class ConsensusRecord(Base):
    """The record of consensus: append-only and hash-chained (see services/consensus.py)."""

    __tablename__ = "consensus_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: A meeting reaches consensus once.
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), unique=True)
    question: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    method: Mapped[ConsensusMethod] = mapped_column(text_enum(ConsensusMethod))
    #: Slugs of the assemblies whose consensus this is; empty for the whole party.
    assemblies: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    #: Produced by a Moot of the assembly with primary remit for its topic: Party
    #: Consensus. Hashed only when true, so older entries keep their hashes.
    party_consensus: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: Unique, so two records can never follow the same one: the chain cannot fork.
    previous_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditEvent(Base):
    """Who did what and when; never how anyone voted."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxMessage(Base):
    """A message to send to a room or a person, sent exactly once by the bot."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    #: A Matrix room ID, or a Matrix user ID for a direct message.
    destination: Mapped[str] = mapped_column(String(255))
    is_direct: Mapped[bool]
    language: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    #: The same logical message is never queued twice (e.g. a retried "notify").
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    sent_at: Mapped[datetime | None]
    #: A ballot invitation: the sender adds a link minted in memory for this right when
    #: it sends; the link is never stored (services/ballot_delivery.py).
    voting_right_id: Mapped[int | None] = mapped_column(ForeignKey("voting_rights.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: The same text as HTML (user-supplied parts escaped); None: the plain body only.
    html: Mapped[str | None] = mapped_column(Text)
    #: A reply to a command: the command's event ID (the message is sent as a reply to it).
    reply_to_event_id: Mapped[str | None] = mapped_column(String(255))
    #: Whom the message pings (``m.mentions``); a reply pings the command's sender.
    mention: Mapped[str | None] = mapped_column(String(255))
    #: ``m.notice`` (a bot's reply) rather than ``m.text`` (a message that must be noticed).
    notice: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: When the first attempt was made: a homeserver forgets transaction IDs after a day,
    #: so an older unconfirmed message is looked for in the room before it is sent again.
    first_attempt_at: Mapped[datetime | None]
    #: Not before this time (backoff after a failure).
    next_attempt_at: Mapped[datetime | None]
    #: Given up (the member cannot be reached); reported to the secretary, not retried.
    failed_at: Mapped[datetime | None]
    #: The event ID the homeserver gave the delivered message.
    event_id: Mapped[str | None] = mapped_column(String(255))
    #: A file sent as its own ``m.file`` message (a meeting's .ics), ``body`` being its
    #: file name; uploaded when it is sent (encrypted for an encrypted room).
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    #: One version of a message kept up to date in its room (a meeting's state): the
    #: first version is sent and pinned, later ones edit it; a version superseded before
    #: it was sent is not sent at all. MatrixState ``pinned:<key>`` holds the event ID.
    pin_key: Mapped[str | None] = mapped_column(String(64), index=True)
    #: A secretary's one-time sign-in link to the paper-ballot page: minted by the sender
    #: when it sends, like a ballot link, and never stored (services/paper_sign_in.py).
    paper_sign_in_id: Mapped[int | None] = mapped_column(ForeignKey("paper_sign_ins.id"))


class PaperSignIn(Base):
    """A one-time link that signs a meeting's organiser in to enter its paper ballots.

    It holds only a hash of the random token in the link, written when the homeserver
    has accepted the direct message with it (services/paper_sign_in.py), and when it was
    used: a link works once, until ``expires_at``.
    """

    __tablename__ = "paper_sign_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: SHA-256 of the token; empty until the message with the link was delivered.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]


class HandledEvent(Base):
    """A Matrix event the bot has acted on (a command answered, or a refusal sent).

    Recorded in the same transaction as the command's effects and its queued reply, so a
    command is handled once even if the bot dies before it saves its sync position.
    """

    __tablename__ = "handled_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    handled_at: Mapped[datetime]
    #: handled, offline (too old: asked to send again), undecryptable, failed.
    outcome: Mapped[str] = mapped_column(String(32))


class DirectRoom(Base):
    """The one direct-message room the bot uses for each person (also in its ``m.direct``
    account data, which Matrix clients read)."""

    __tablename__ = "direct_rooms"

    matrix_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class MatrixState(Base):
    """The bot's own small facts about Matrix (the party's Space), by name."""

    __tablename__ = "matrix_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


APPEND_ONLY = (ConsensusRecord, AuditEvent)


@event.listens_for(Session, "before_flush")
def _refuse_rewriting_history(session: Session, _context: object, _instances: object) -> None:
    """The record of consensus and the audit log are append-only, whatever the caller does."""
    for instance in session.deleted:
        if isinstance(instance, APPEND_ONLY):
            raise PermissionError(f"{type(instance).__name__} rows are append-only")
    for instance in session.dirty:
        if isinstance(instance, APPEND_ONLY) and session.is_modified(instance):
            raise PermissionError(f"{type(instance).__name__} rows are append-only")
