"""The commands of Party Thing petitions, and primary remit."""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command

COMMANDS: tuple[Command, ...] = ()
