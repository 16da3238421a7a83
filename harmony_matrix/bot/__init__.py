"""The Matrix bot: matrix-nio client, sync loop, commands, rooms, outbox delivery."""
