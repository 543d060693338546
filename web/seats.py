"""The seat badge of a departure or a tour card, with the original's thresholds: at most 10 % of
the seats left is "last seats", at most 20 % "limited", at most 50 % a softer notice, none
"sold out". The page's script applies the same rule to live updates (static/js/live.js)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Badge:
    level: str
    """`sold-out`, `last`, `limited`, `filling` or `open`: the CSS class and the script's key."""
    available: int
    capacity: int


def level(available: int, capacity: int) -> str:
    if available <= 0:
        return "sold-out"
    if capacity <= 0:
        return "open"
    share = available / capacity
    if share <= 0.10:
        return "last"
    if share <= 0.20:
        return "limited"
    if share <= 0.50:
        return "filling"
    return "open"


def badge(available: int | None, capacity: int | None) -> Badge | None:
    if available is None or capacity is None:
        return None
    return Badge(level(available, capacity), available, capacity)
