"""Waiting before trying again: exponential, with jitter, and the server's own wish first."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    def __init__(self, first: float = 1.0, longest: float = 60.0) -> None:
        self.first = first
        self.longest = longest
        self.failures = 0

    def next_delay(self, retry_after_ms: int | None = None) -> float:
        """The wait before the next try: what the server asked for (429 /
        M_LIMIT_EXCEEDED), else 1, 2, 4... seconds up to ``longest``, each drawn from its
        upper half so that restarted bots do not retry in step."""
        self.failures += 1
        if retry_after_ms:
            return retry_after_ms / 1000
        ceiling = min(self.longest, self.first * 2 ** (self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when ``stop`` is set; True if it was set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
