"""The commands of calling, scheduling, preparing and opening meetings, and the roll call."""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command

COMMANDS: tuple[Command, ...] = ()
