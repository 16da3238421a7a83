"""The Matrix bot: commands and replies, rooms and the Space, the outbox sender."""
