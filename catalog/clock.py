"""What "today" is for catalog: the UTC date, the same for every replica whatever its time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Departures strictly after this date are in the future (bookable, listed)."""
    return now().date()
