"""The events catalog publishes, through the outbox in the transaction of each seat change:
`tour.availability.changed` on every change of a departure's counters, and `tour.availability.low`
when its free seats fall to the low threshold or under it (but not to zero)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from typing import Any

import asyncpg

from common.bus import Event, add_event


@dataclasses.dataclass(frozen=True)
class Counters:
    """A departure's seats at one instant (a `db.SEAT_COUNTERS` row)."""

    departure_id: uuid.UUID
    tour_id: uuid.UUID
    tour_title: str
    date: date
    capacity: int
    held: int
    booked: int
    is_active: bool

    @classmethod
    def of(cls, record: asyncpg.Record) -> Counters:
        return cls(**{field.name: record[field.name] for field in dataclasses.fields(cls)})

    @property
    def available(self) -> int:
        return self.capacity - self.held - self.booked

    def before(self, *, held: int = 0, booked: int = 0) -> Counters:
        """The counters before a change that added `held` and `booked`."""
        return dataclasses.replace(self, held=self.held - held, booked=self.booked - booked)


def low_threshold(capacity: int) -> int:
    """ceil(20 % of capacity), in integers: 0.2 * 15 is 3.0000000000000004 in floating point."""
    return (capacity + 4) // 5


def crossed_low(before: Counters, after: Counters) -> bool:
    """From above the threshold to at or below it, seats still left. Each state is judged by its
    own capacity, so a capacity cut can cross too. Takes on one departure are serialised by its
    row lock, so of concurrent takes exactly one sees the crossing."""
    return (before.available > low_threshold(before.capacity)
            and 0 < after.available <= low_threshold(after.capacity))


def changed_data(after: Counters) -> dict[str, Any]:
    return {"tourId": str(after.tour_id), "departureId": str(after.departure_id),
            "tourDate": after.date.isoformat(), "availableSeats": after.available,
            "capacity": after.capacity, "heldSeats": after.held, "bookedSeats": after.booked}


def low_data(after: Counters) -> dict[str, Any]:
    return {"tourId": str(after.tour_id), "departureId": str(after.departure_id),
            "tourTitle": after.tour_title, "tourDate": after.date.isoformat(),
            "availableSeats": after.available, "capacity": after.capacity,
            "threshold": low_threshold(after.capacity)}


async def record_availability(conn: asyncpg.Connection, before: Counters,
                              after: Counters) -> None:
    """Write the events of one counter change; call it in the transaction of that change."""
    await add_event(conn, Event.new("tour.availability.changed", changed_data(after)))
    if crossed_low(before, after):
        await add_event(conn, Event.new("tour.availability.low", low_data(after)))
