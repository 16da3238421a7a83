"""The constitution's consensus clause as pure functions: no I/O, no clock, no database.

Each rule quotes the clause it implements. Where the constitution leaves a gap, the
reading taken is an explicit default in :class:`Rules`, configurable under ``[rules]``
and documented in docs/constitution.md.
"""

from harmony_matrix.constitution.interpretations import Rules

__all__ = ["Rules"]
