"""Reading and writing a whole register at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector while a bulk import builds objects by the hundred
    thousand, none of them in a cycle: each full collection walks them all again, which
    doubled the time of a 100,000-row import. Reference counting still frees memory; the
    collector resumes (as it was) afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
