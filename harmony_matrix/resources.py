"""Find the data folders (web/, locales/, alembic/) in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder ``name`` ("web", "locales" or "alembic").

    A wheel carries them inside the package under ``_data/`` (see pyproject.toml); a
    checkout or an editable install has them at the top level of the repository.
    """
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"Harmony's data folder {name!r} is missing from this installation")
