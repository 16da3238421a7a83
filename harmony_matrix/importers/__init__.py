"""Parsers for the operator's files: the member register (CSV) and assemblies (TOML).

They only read and check; the services write. Every problem names its row or entry.
"""
