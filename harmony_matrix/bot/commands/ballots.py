"""The commands of the secret STAR ballot: opening and closing it, and paper ballots."""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command

COMMANDS: tuple[Command, ...] = ()
