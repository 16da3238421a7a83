"""Domain errors: each carries a translatable message meant for the person who acted."""

from __future__ import annotations

from harmony_matrix.i18n import Message


class HarmonyError(Exception):
    """A failure the user can understand and act on; never shown as a traceback."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


class InvalidInput(HarmonyError):
    """The request itself is malformed (a bad date, a missing argument, a bad CSV row)."""


class NotFound(HarmonyError):
    """The assembly, meeting, person or petition named does not exist."""


class NotAllowed(HarmonyError):
    """The person may not do this (not a secretary, suspended, not a Member...)."""


class RuleViolation(HarmonyError):
    """The constitution forbids it now (too early, no quorum, wrong phase, date too far)."""
