"""catalog's wire models: what requests must contain and what responses look like."""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from catalog.currencies import is_in_circulation
from catalog.slugs import MAX_LENGTH, PATTERN, looks_like_id
from common.http import Schema

Difficulty = Literal["easy", "medium", "difficult"]
DurationUnit = Literal["hours", "days", "weeks"]
HoldState = Literal["held", "booked", "released"]
Sort = Literal["price", "-price", "rating", "startDate", "title"]


def _not_an_id(value: str) -> str:
    if looks_like_id(value):
        raise ValueError("must not be shaped like a UUID (paths take an id or a slug)")
    return value


def _iso_currency(value: str) -> str:
    if not is_in_circulation(value):
        raise ValueError("must be the ISO 4217 code of a currency in circulation, such as EUR, "
                         "USD or GBP")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    # Lax parsing would read 1893456000 as a Unix time (a departure on 2030-01-01) and answer
    # "20270314" with a message about datetimes: dates are YYYY-MM-DD on the wire (DESIGN §2).
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        # The date itself, not its text: request bodies are validated strictly, and a strict
        # date takes no string that a validator hands on.
        with contextlib.suppress(ValueError):  # 2027-02-30
            return date.fromisoformat(value)
    raise ValueError("must be a date as YYYY-MM-DD")


Slug = Annotated[str, StringConstraints(pattern=PATTERN, max_length=MAX_LENGTH),
                 AfterValidator(_not_an_id)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=20_000)]
Icon = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
ImageUrl = Annotated[str, StringConstraints(max_length=500, pattern=r"^(https?://|/)\S+$"),
                     Field(description="An http(s) URL or a path on this site")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"),
                     AfterValidator(_iso_currency),
                     Field(description="ISO 4217 code of a currency in circulation")]
# Every integer bound below keeps values inside PostgreSQL's `integer`: a larger number would
# otherwise reach the database and come back as a 500 instead of a 400 naming the field.
MAX_MONEY = 100_000_000
# Strict: 89.99 or "8999" are refused rather than guessed at; money is an integer of minor units.
Money = Annotated[int, Field(strict=True, ge=0, le=MAX_MONEY,
                             description="Minor units: 8999 is 89.99")]
# Lax in queries, whose values are text.
MoneyFilter = Annotated[int, Field(ge=0, le=MAX_MONEY, description="Minor units")]
RatingsQuantity = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
Seats = Annotated[int, Field(strict=True, ge=1, le=10_000)]
# Strict too: `true` or "4.5" are not ratings (lax parsing would take them as 1.0 and 4.5).
Rating = Annotated[float, Field(strict=True, ge=0, le=5)]
IdOrSlug = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH),
                     Field(description="An id or a slug")]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Duration = Annotated[int, Field(strict=True, ge=1, le=1000)]
Images = Annotated[list[ImageUrl], Field(max_length=30)]


def _refuse_null(value: Any) -> Any:
    # A `mode="before"` validator runs only on values the client sent: an omitted field keeps
    # its None default ("unchanged"), an explicit null is refused with the field's name.
    if value is None:
        raise ValueError("cannot be null")
    return value


class _Patch(Schema):
    # A PATCH body: only what is sent changes, and an empty one is refused.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self


# --- queries ------------------------------------------------------------------------------------


class PageQuery(Schema):
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    include_inactive: bool = Field(False, description="Admins only: list inactive entries too")


class TourQuery(PageQuery):
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        None, description="Words to find in the title, destination, summary or description; "
                          "each word may be the start of a word, accents do not matter")
    destination: IdOrSlug | None = None
    category: IdOrSlug | None = None
    min_price: MoneyFilter | None = None
    max_price: MoneyFilter | None = None
    difficulty: Difficulty | None = None
    from_: IsoDate | None = Field(
        None, alias="from", description="Tours with an active departure on or after this date")
    to: IsoDate | None = Field(None, description="Tours with an active departure on or before it")
    sort: Sort | None = Field(None, description="rating is best first, startDate soonest first; "
                                                "default: relevance with q, else rating")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if self.min_price is not None and self.max_price is not None \
                and self.min_price > self.max_price:
            raise ValueError("minPrice must not be above maxPrice")
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError("from must not be after to")
        return self


class DetailQuery(Schema):
    include_inactive: bool = Field(
        False, description="Admins only: the tour even if inactive, and inactive departures")


class DestinationQuery(PageQuery):
    country: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=100)] | None = None


# --- tours and departures -----------------------------------------------------------------------


class TourIn(Schema):
    title: Title
    slug: Slug | None = Field(None, description="Default: derived from the title")
    summary: Summary | None = None
    description: LongText
    price: Money
    currency: Currency = "EUR"
    duration: Duration
    duration_unit: DurationUnit = "days"
    difficulty: Difficulty = "medium"
    max_group_size: Seats = Field(15, description="Most seats one booking may take; also the "
                                                  "default capacity of a departure")
    ratings_average: Rating = 0
    ratings_quantity: RatingsQuantity = 0
    image_cover: ImageUrl | None = None
    images: Images = []
    category_id: UUID | None = None
    destination_id: UUID | None = None
    is_active: bool = True


class TourPatch(_Patch):
    """Only what is sent changes; null clears the optional fields (summary, images, links)."""

    title: Title | None = None
    slug: Slug | None = None
    summary: Summary | None = None
    description: LongText | None = None
    price: Money | None = None
    currency: Currency | None = None
    duration: Duration | None = None
    duration_unit: DurationUnit | None = None
    difficulty: Difficulty | None = None
    max_group_size: Seats | None = None
    ratings_average: Rating | None = None
    ratings_quantity: RatingsQuantity | None = None
    image_cover: ImageUrl | None = None
    images: Images | None = None
    category_id: UUID | None = None
    destination_id: UUID | None = None
    is_active: bool | None = None

    _not_null = field_validator(
        "title", "slug", "description", "price", "currency", "duration", "duration_unit",
        "difficulty", "max_group_size", "ratings_average", "ratings_quantity", "images",
        "is_active", mode="before")(_refuse_null)


class DepartureIn(Schema):
    date: IsoDate
    capacity: Seats | None = Field(None, description="Default: the tour's maxGroupSize")


class DeparturePatch(_Patch):
    capacity: Seats | None = Field(
        default=None, description="Never below the seats already held and booked (409 otherwise)")
    is_active: bool | None = None

    _not_null = field_validator("capacity", "is_active", mode="before")(_refuse_null)


class CategoryRef(Schema):
    id: UUID
    name: str
    slug: str
    icon: str | None


class Coordinates(Schema):
    lat: Annotated[float, Field(strict=True, ge=-90, le=90)]
    lng: Annotated[float, Field(strict=True, ge=-180, le=180)]


class DestinationRef(Schema):
    id: UUID
    name: str
    slug: str
    country: str
    region: str | None
    coordinates: Coordinates | None


class DepartureOut(Schema):
    id: UUID
    tour_id: UUID
    date: date
    capacity: int
    available_seats: int = Field(description="capacity - heldSeats - bookedSeats, live")
    held_seats: int
    booked_seats: int
    is_active: bool


class TourOut(Schema):
    id: UUID
    title: str
    slug: str
    summary: str | None
    description: str
    price: int = Field(description="Minor units, per person")
    currency: str
    currency_digits: int = Field(description=(
        "Digits of the currency's minor unit: a price of 8999 is 89.99 with 2, 8999 with 0"))
    duration: int
    duration_unit: DurationUnit
    difficulty: Difficulty
    max_group_size: int
    ratings_average: float
    ratings_quantity: int
    image_cover: str | None
    images: list[str]
    category: CategoryRef | None
    destination: DestinationRef | None
    is_active: bool
    next_departure_date: date | None = Field(description="The next active future departure")
    created_at: datetime
    updated_at: datetime


class TourDetailOut(TourOut):
    departures: list[DepartureOut] = Field(description="Future departures, soonest first")


class TourPage(Schema):
    items: list[TourOut]
    page: int
    limit: int
    total: int


# --- categories and destinations ----------------------------------------------------------------


class CategoryIn(Schema):
    name: Name
    slug: Slug | None = Field(None, description="Default: derived from the name")
    description: LongText | None = None
    icon: Icon | None = None
    is_active: bool = True


class CategoryPatch(_Patch):
    name: Name | None = None
    slug: Slug | None = None
    description: LongText | None = None
    icon: Icon | None = None
    is_active: bool | None = None

    _not_null = field_validator("name", "slug", "is_active", mode="before")(_refuse_null)


class CategoryOut(Schema):
    id: UUID
    name: str
    slug: str
    description: str | None
    icon: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class CategoryPage(Schema):
    items: list[CategoryOut]
    page: int
    limit: int
    total: int


class DestinationIn(Schema):
    name: Name
    slug: Slug | None = Field(None, description="Default: derived from the name")
    country: Name
    region: Name | None = None
    description: LongText | None = None
    image: ImageUrl | None = None
    coordinates: Coordinates | None = None
    is_active: bool = True


class DestinationPatch(_Patch):
    name: Name | None = None
    slug: Slug | None = None
    country: Name | None = None
    region: Name | None = None
    description: LongText | None = None
    image: ImageUrl | None = None
    coordinates: Coordinates | None = None
    is_active: bool | None = None

    _not_null = field_validator("name", "slug", "country", "is_active",
                                mode="before")(_refuse_null)


class DestinationOut(Schema):
    id: UUID
    name: str
    slug: str
    country: str
    region: str | None
    description: str | None
    image: str | None
    coordinates: Coordinates | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class DestinationPage(Schema):
    items: list[DestinationOut]
    page: int
    limit: int
    total: int


# --- seat holds (/internal) ---------------------------------------------------------------------


class HoldIn(Schema):
    booking_id: UUID = Field(description="The key of every change to this hold")
    tour_id: UUID
    tour_date: IsoDate
    seats: int = Field(strict=True, description="1 to the tour's maxGroupSize (errors name the "
                                                "field participants, as booking calls it)")
    expires_at: AwareDatetime = Field(description="When booking will give up on the booking; "
                                                  "the sweeper releases the hold some time after")


class HoldResizeIn(Schema):
    seats: int = Field(strict=True, description=(
        "What the booking holds from now on: 1 to the tour's maxGroupSize (errors name the "
        "field participants)"))


class HoldOut(Schema):
    booking_id: UUID
    tour_id: UUID
    departure_id: UUID
    tour_date: date
    seats: int
    state: HoldState
    expires_at: datetime
    tour_title: str
    unit_price: int = Field(description="Minor units, when the seats were taken")
    currency: str
    max_group_size: int
    available_seats: int = Field(description="Left on the departure, after this change")
    capacity: int
