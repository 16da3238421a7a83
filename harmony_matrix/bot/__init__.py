"""The Matrix bot: the party's rooms, commands and messages, on top of ``services/``."""
