"""Exponential backoff with jitter, shared by reconnects, the outbox relay and consumer restarts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """`next()` gives base·2ⁿ capped at `cap`, randomised to [½, 1] of that ("equal jitter").

    The jitter spreads replicas that lost the broker together, so they do not all come back at
    the same instant; the lower half keeps a floor so a retry never spins.
    """

    base: float = 0.2
    cap: float = 10.0
    _failures: int = field(default=0, init=False)

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self._failures, 30))
        self._failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0
