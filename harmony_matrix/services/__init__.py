"""Use cases shared by the bot, the web companion and the command line.

Each public coroutine is one transaction: it checks input and permissions, applies the
constitution's rules, writes its records with an audit event and any outgoing messages
(through the outbox), and returns a plain value. It raises a ``HarmonyError`` subclass
with a translatable message, and then nothing has been written.
"""
