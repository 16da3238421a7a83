"""The commands of the discussion and the debate: suggestions, options, moving to the vote."""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command

COMMANDS: tuple[Command, ...] = ()
