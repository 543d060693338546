"""payments' HTTP handlers: parse, call the payment rules, shape the response."""

from __future__ import annotations

import uuid

from aiohttp import web

from common.auth import Identity
from common.http import endpoint, json_response
from common.http.idempotency import REPLAYED_HEADER, idempotency_key
from payments.app_keys import AMOUNTS, ANOMALIES, CHECKOUT, CONFIG, RECORDS, REFUNDS, WEBHOOKS
from payments.bookings import BookingNotFound
from payments.errors import PaymentNotFound
from payments.records import NoPaymentsForBooking
from payments.refunds import RefundRequest, split_reason
from payments.schemas import (
    AmountIn,
    AmountOut,
    BookingPaymentsOut,
    ConfigOut,
    CreateIntentIn,
    IntentOut,
    ListQuery,
    PaymentListOut,
    PaymentOut,
    PaymentQuery,
    RefundedOut,
    RefundIn,
    ResolveIn,
    WebhookOut,
    refund_out,
)

TAGS = ("payments",)


def _uuid(request: web.Request, name: str, missing: type[Exception]) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise missing() from None


@endpoint(summary="What the browser needs to talk to Stripe", response=ConfigOut, tags=TAGS,
          description="The publishable key, and whether it is a live or a test key.")
async def get_config(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return json_response(ConfigOut(publishable_key=config.stripe_publishable_key,
                                   mode=config.mode))


@endpoint(summary="A PaymentIntent for one's own pending booking", access="user",
          body=CreateIntentIn, response=IntentOut, status=201,
          errors=(403, 404, 409, 422, 502, 503), tags=TAGS, description=(
              "The amount and currency are the booking's. 201 with a new intent; 200 with the "
              "booking's open intent (reused, e.g. after a declined card). The booking must be "
              "pending and not expired (409 BOOKING_NOT_PAYABLE) and not paid (409 "
              "BOOKING_ALREADY_PAID); someone else's is 404 (403 NOT_BOOKING_OWNER for an "
              "administrator). With an `Idempotency-Key` header, the same key and body answer "
              f"the same response again (`{REPLAYED_HEADER}: true`); another body is 422 "
              "IDEMPOTENCY_KEY_REUSED."))
async def create_intent(request: web.Request, identity: Identity,
                        body: CreateIntentIn) -> web.Response:
    key = idempotency_key(request)
    answer = await request.app[CHECKOUT].create_intent(
        identity, body.booking_id, request.headers["Authorization"], key)
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return json_response(answer.body, status=answer.status, headers=headers)


@endpoint(summary="The caller's payments", access="user", query=ListQuery,
          response=PaymentListOut, tags=TAGS, description="Newest first.")
async def my_payments(request: web.Request, identity: Identity,
                      query: ListQuery) -> web.Response:
    found = await request.app[RECORDS].mine(identity, page=query.page, limit=query.limit)
    return json_response(PaymentListOut(items=found.items, page=query.page, limit=query.limit,
                                        total=found.total))


@endpoint(summary="Every payment, with filters (managers and admins)", access="manager",
          query=PaymentQuery, response=PaymentListOut, tags=TAGS, description=(
              "Newest first, each with its refunds and anomalies. Filters: `status`, "
              "`bookingId`, `userId`, `anomaly` (true: an unresolved anomaly; false: none)."))
async def list_payments(request: web.Request, identity: Identity,
                        query: PaymentQuery) -> web.Response:
    found = await request.app[RECORDS].search(query)
    return json_response(PaymentListOut(items=found.items, page=query.page, limit=query.limit,
                                        total=found.total))


@endpoint(summary="The payment attempts of one booking", access="user",
          response=BookingPaymentsOut, errors=(404,), tags=TAGS, description=(
              "Its owner's or, for an administrator, anyone's; otherwise (or without any "
              "payment yet) 404 PAYMENT_NOT_FOUND."))
async def booking_payments(request: web.Request, identity: Identity) -> web.Response:
    booking_id = _uuid(request, "bookingId", NoPaymentsForBooking)
    items = await request.app[RECORDS].of_booking(identity, booking_id)
    return json_response(BookingPaymentsOut(items=items))


@endpoint(summary="One payment with its refunds and anomalies", access="user", response=PaymentOut,
          errors=(404,), tags=TAGS,
          description="Someone else's payment is 404 PAYMENT_NOT_FOUND, as an unknown one.")
async def get_payment(request: web.Request, identity: Identity) -> web.Response:
    payment_id = _uuid(request, "id", PaymentNotFound)
    return json_response(await request.app[RECORDS].get(identity, payment_id))


@endpoint(summary="Refund a payment, wholly or in part (admin)", access="admin", body=RefundIn,
          response=RefundedOut, status=201, errors=(404, 409, 502, 503), tags=TAGS,
          description=(
              "Refunds may add up to what was paid, no more (409 REFUND_EXCEEDS_PAYMENT); only "
              "a succeeded, partially refunded or mismatched payment (up to what Stripe took "
              "for it) can be refunded (409 PAYMENT_NOT_REFUNDABLE). Stripe refusing is 502 "
              "PAYMENT_PROVIDER_REFUSED; Stripe not answering is 503 REFUND_PENDING: the refund "
              "is kept and sent again."))
async def refund_payment(request: web.Request, identity: Identity,
                         body: RefundIn) -> web.Response:
    payment_id = _uuid(request, "id", PaymentNotFound)
    reason, note = split_reason(body.reason)
    done = await request.app[REFUNDS].refund(payment_id, RefundRequest(
        amount=body.amount, reason=reason, note=note, source="admin"))
    payment = await request.app[RECORDS].get(identity, payment_id)
    return json_response(RefundedOut(refund=refund_out(done.refund), payment=payment),
                         status=201)


@endpoint(summary="Resolve a payment's anomalies (admin)", access="admin", body=ResolveIn,
          response=PaymentOut, errors=(404, 409), tags=TAGS, description=(
              "Marks every unresolved anomaly of the payment resolved, with the note and who "
              "wrote it; none left is 409 NO_UNRESOLVED_ANOMALY. A mismatched payment's "
              "anomaly also resolves itself once all Stripe took is refunded."))
async def resolve_anomalies(request: web.Request, identity: Identity,
                            body: ResolveIn) -> web.Response:
    payment_id = _uuid(request, "id", PaymentNotFound)
    await request.app[ANOMALIES].resolve(payment_id, note=body.note,
                                         by=uuid.UUID(identity.user_id))
    return json_response(await request.app[RECORDS].get(identity, payment_id))


@endpoint(summary="A pending booking's new total (for booking)", access="service",
          body=AmountIn, response=AmountOut, errors=(401, 404, 409, 502, 503),
          tags=("internal",), description=(
              "Called by booking before it commits a new total. The booking's open intent asks "
              "the new amount from then on (a payment at the old one is an amount_mismatch "
              "anomaly); the same amount again changes nothing. 409 PAYMENT_IN_PROGRESS: a "
              "payment of the booking is processing or succeeded, and the booking must refuse "
              "its change. 404 BOOKING_NOT_FOUND only for a malformed id (a booking payments "
              "never saw is 200, action none). 503 with Retry-After when Stripe cannot be "
              "reached. A service credential (`X-Internal-Token`) is required: anything else, a "
              "user's token included, is 401 SERVICE_CREDENTIAL_INVALID."))
async def change_amount(request: web.Request, body: AmountIn) -> web.Response:
    booking_id = _uuid(request, "bookingId", BookingNotFound)
    changed = await request.app[AMOUNTS].change(booking_id, body.amount, body.currency)
    return json_response(AmountOut(booking_id=changed.booking_id, amount=changed.amount,
                                   currency=changed.currency,
                                   payment_intent_id=changed.payment_intent_id,
                                   action=changed.action))


@endpoint(summary="Stripe's webhook", response=WebhookOut, errors=(400,), tags=("webhooks",),
          description=(
              "The raw body, signed by Stripe (`Stripe-Signature`); a bad signature, or one "
              "dated outside the tolerance (either way), is 400 INVALID_SIGNATURE and changes "
              "nothing. A signed body that is not an event payments can read is 400 "
              "MALFORMED_EVENT (details name the fields), recorded and applied nowhere. Each "
              "event is applied once."))
async def stripe_webhook(request: web.Request) -> web.Response:
    outcome = await request.app[WEBHOOKS].receive(await request.read(),
                                                  request.headers.get("Stripe-Signature"))
    return json_response({"received": True, "outcome": outcome})
