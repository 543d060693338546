"""What payments reads of Stripe's objects, validated: the same models read API answers and webhook
snapshots, so that a field of the wrong type, a missing one or an absurd value is refused before
anything uses it (a webhook's is a 400, never an error of ours)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from payments.schemas import MAX_AMOUNT


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000, and Stripe never sends it.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def _id_of(value: Any) -> Any:
    """An expandable field: the id string, or the expanded object's id."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _listed(value: Any) -> Any:
    """A list object (`{"object": "list", "data": [...]}`) as its items; absent is none."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return value.get("data")
    return value


StripeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,255}$")]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,255}$")]
# Integers as JSON writes them: "9000", 12.5 and 1e400 are not amounts. Stripe charges and
# refunds at least 1; what is refunded of a charge may be 0.
Amount = Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT)]
Total = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.upper)]
Text = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_no_nul)]
Expandable = Annotated[StripeId | None, BeforeValidator(_id_of)]
Metadata = Annotated[dict[str, Text], BeforeValidator(lambda value: {} if value is None else value)]

IntentStatus = Literal["requires_payment_method", "requires_confirmation", "requires_action",
                       "processing", "requires_capture", "canceled", "succeeded"]
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]


class StripeObject(BaseModel):
    """Only the fields payments reads; Stripe's others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class PaymentError(StripeObject):
    message: Text | None = None
    decline_code: Text | None = None
    code: Text | None = None


class Intent(StripeObject):
    """A PaymentIntent."""

    id: StripeId
    status: IntentStatus
    amount: Amount
    currency: Currency
    metadata: Metadata = Field(default_factory=dict)
    client_secret: Text | None = Field(None, repr=False)
    last_payment_error: PaymentError | None = None
    latest_charge: Expandable = None
    payment_method: Expandable = None

    @property
    def failure_message(self) -> str | None:
        error = self.last_payment_error
        if error is None:
            return None
        return error.message or error.decline_code or error.code or "The payment failed"


class Refund(StripeObject):
    id: StripeId
    amount: Amount
    status: RefundStatus
    payment_intent: Expandable = None
    reason: Text | None = None
    metadata: Metadata = Field(default_factory=dict)
    failure_reason: Text | None = None


class Charge(StripeObject):
    """A charge as `charge.refunded` carries it: how much of it is refunded, and the refunds
    when the payload includes them (older API versions do; newer ones leave them out)."""

    id: StripeId
    payment_intent: Expandable = None
    amount_refunded: Total = 0
    refunds: Annotated[tuple[Refund, ...], BeforeValidator(_listed)] = ()


class EventData(StripeObject):
    object: dict[str, Any]


class Event(StripeObject):
    """A webhook's event: what it is about is validated by its type (`Intent`, `Refund`...)."""

    id: StripeId
    type: EventType
    data: EventData


_EVENT_ID: TypeAdapter[str] = TypeAdapter(StripeId)
_EVENT_TYPE: TypeAdapter[str] = TypeAdapter(EventType)


def event_names(data: Any) -> tuple[str | None, str | None]:
    """The id and type of a body that may not be a valid event, where they are valid."""
    if not isinstance(data, dict):
        return None, None
    return _valid(_EVENT_ID, data.get("id")), _valid(_EVENT_TYPE, data.get("type"))


def _valid(adapter: TypeAdapter[str], value: Any) -> str | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None
