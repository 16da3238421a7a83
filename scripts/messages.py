"""Extract every translatable message into locales/messages.pot and update the catalogs.

Run it (``./dev messages``) after changing user-facing text, then translate the new
entries; tests/test_i18n.py fails until every catalog is complete.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYBABEL = [sys.executable, "-m", "babel.messages.frontend", "-q"]


def main() -> int:
    template = ROOT / "locales" / "messages.pot"
    subprocess.run(
        [
            *PYBABEL,
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_n:1,2",
            "-o",
            str(template),
            "--add-comments=TRANSLATORS:",
            "--project=harmony",
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [
            *PYBABEL,
            "update",
            "-i",
            str(template),
            "-d",
            str(ROOT / "locales"),
            "--no-fuzzy-matching",
            # Old translations stay in git history, not as "#~" clutter in the catalog.
            "--ignore-obsolete",
        ],
        cwd=ROOT,
        check=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
