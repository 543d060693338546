"""The errors catalog raises; common's middleware renders each in the one envelope."""

from __future__ import annotations

from datetime import date
from typing import Any

from common.errors import BadRequest, Conflict, NotFound, ValidationFailed


def invalid(field: str, message: str) -> ValidationFailed:
    """A 400 VALIDATION_ERROR about one field, shaped like the schema validation's."""
    return ValidationFailed(details=[{"field": field, "message": message}])


class TourNotFound(NotFound):
    code, message = "TOUR_NOT_FOUND", "No such tour"


class DepartureNotFound(NotFound):
    code, message = "DEPARTURE_NOT_FOUND", "No such departure"


class CategoryNotFound(NotFound):
    code, message = "CATEGORY_NOT_FOUND", "No such category"


class DestinationNotFound(NotFound):
    code, message = "DESTINATION_NOT_FOUND", "No such destination"


class HoldNotFound(NotFound):
    code, message = "HOLD_NOT_FOUND", "No hold for this booking"


class DuplicateSlug(Conflict):
    code = "DUPLICATE_SLUG"

    def __init__(self, slug: str) -> None:
        super().__init__(f"The slug {slug!r} is already used; choose another one",
                         details={"slug": slug})


class DepartureExists(Conflict):
    code = "DEPARTURE_EXISTS"

    def __init__(self, existing: Any) -> None:
        hint = "" if existing["is_active"] else " (inactive: PATCH it with isActive true)"
        super().__init__(f"The tour already has a departure on {existing['date']}{hint}",
                         details={"departureId": str(existing["id"]),
                                  "date": existing["date"].isoformat(),
                                  "isActive": existing["is_active"]})


class CapacityBelowReserved(Conflict):
    code = "CAPACITY_BELOW_RESERVED"

    def __init__(self, capacity: int, held: int, booked: int) -> None:
        super().__init__(
            f"Capacity {capacity} is below the {held + booked} seats already held or booked",
            details={"capacity": capacity, "heldSeats": held, "bookedSeats": booked,
                     "minimumCapacity": held + booked})


class ReferenceInUse(Conflict):
    """A category or destination that active tours still use cannot be deactivated."""

    def __init__(self, kind: str, active_tours: int) -> None:
        self.code = f"{kind.upper()}_IN_USE"
        super().__init__(f"{active_tours} active tour(s) use this {kind}; move or deactivate "
                         "them first", details={"activeTours": active_tours})


class DepartureInPast(BadRequest):
    code = "DEPARTURE_IN_PAST"

    def __init__(self, tour_date: date) -> None:
        super().__init__(f"{tour_date.isoformat()} is not in the future; seats can be held from "
                         "tomorrow (UTC) on", details={"tourDate": tour_date.isoformat()})


class InsufficientAvailability(Conflict):
    code = "INSUFFICIENT_AVAILABILITY"

    def __init__(self, available: int, requested: int, tour_date: date) -> None:
        # The contract's wording, which booking passes through to travellers.
        super().__init__(f"Only {available} seats left on {tour_date.isoformat()}",
                         details={"availableSeats": available, "requested": requested,
                                  "tourDate": tour_date.isoformat()})


class HoldReleased(Conflict):
    code, message = "HOLD_RELEASED", "This booking's hold was released; take a new booking"
