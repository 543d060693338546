"""The seat badge of a departure or a tour card, with the original's thresholds: at most 10 % of
the seats left is "last seats", at most 20 % "limited", at most 50 % a softer notice, none
"sold out". The page's script applies the same rule to live updates (static/js/live.js)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.i18n import format_day, gettext


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


def seats_text(available: int) -> str:
    if available <= 0:
        return gettext("Sold out")
    if available == 1:
        return gettext("1 seat left")
    return gettext("%(n)s seats left") % {"n": available}


LABELS = {"sold-out": "Sold out", "last": "Last seats", "limited": "Limited seats",
          "filling": "Filling up", "open": "Available"}


def rows(departures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tour's departures as its page lists them, worded once here rather than by the template
    for each of them (a tour may have a hundred)."""
    shown = []
    for departure in departures:
        available, capacity = departure["availableSeats"], departure["capacity"]
        kind = level(available, capacity)
        shown.append({**departure, "when": format_day(departure["date"], "full"),
                      "seats": seats_text(available), "level": kind,
                      "label": gettext(LABELS[kind])})
    return shown


def badge(available: int | None, capacity: int | None) -> Badge | None:
    if available is None or capacity is None:
        return None
    return Badge(level(available, capacity), available, capacity)
