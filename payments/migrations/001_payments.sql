-- One row per payment attempt of a booking, each backed by one Stripe PaymentIntent. The row is
-- committed before Stripe is asked, and Stripe is asked with the idempotency key
-- `tourbook-intent-<bookingId>-<attempt>`: a retried or concurrent request for the same attempt
-- gets the same intent back, never a second one. A new attempt is made only once the previous
-- intent is canceled.
CREATE TABLE payments (
    id                       uuid PRIMARY KEY,
    booking_id               uuid NOT NULL,
    user_id                  uuid NOT NULL,
    attempt                  integer NOT NULL CHECK (attempt >= 1),
    -- NULL until Stripe answered the creation (or after a crash before it answered).
    stripe_payment_intent_id text UNIQUE,
    -- Money in minor units and the ISO currency, both taken from the booking.
    amount                   bigint NOT NULL CHECK (amount > 0),
    currency                 text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                   text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'processing', 'succeeded', 'failed',
                                               'canceled', 'refunded', 'partially_refunded')),
    -- The sum of the refunds Stripe took on (pending or succeeded), kept from the refunds below.
    refunded_amount          bigint NOT NULL DEFAULT 0
                             CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    failure_message          text,
    payment_method_id        text,
    stripe_charge_id         text,
    -- When reconciliation next asks Stripe about this payment while it stays open.
    check_after              timestamptz NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (booking_id, attempt)
);

-- At most one open attempt per booking: the next one starts only once this one is canceled or
-- paid. ("failed" is open: Stripe keeps the intent, and the customer may try another card.)
CREATE UNIQUE INDEX payments_one_open_attempt_idx ON payments (booking_id)
    WHERE status IN ('pending', 'processing', 'failed');
CREATE INDEX payments_user_created_idx ON payments (user_id, created_at DESC, id);
CREATE INDEX payments_open_check_idx ON payments (check_after)
    WHERE status IN ('pending', 'processing', 'failed');

-- The refunds of a payment: the ledger refunded_amount is summed from. Ours are written before
-- Stripe is asked (status 'requested'), with the idempotency key sent to Stripe, so a refund
-- whose answer was lost is asked again with the same key, and reserved meanwhile: refunds can
-- never add up to more than was paid. Refunds made elsewhere (the Stripe dashboard) arrive by
-- webhook, with source 'stripe' and no key.
CREATE TABLE refunds (
    id               uuid PRIMARY KEY,
    payment_id       uuid NOT NULL REFERENCES payments (id),
    stripe_refund_id text UNIQUE,
    idempotency_key  text UNIQUE,
    amount           bigint NOT NULL CHECK (amount > 0),
    status           text NOT NULL
                     CHECK (status IN ('requested', 'pending', 'requires_action', 'succeeded',
                                       'failed', 'canceled')),
    -- Stripe's enum; free text from the administrator is kept in `note` (and in Stripe's
    -- metadata), never sent as the reason.
    reason           text CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    note             text,
    source           text NOT NULL CHECK (source IN ('admin', 'cancellation', 'stripe')),
    failure_message  text,
    -- When reconciliation may ask Stripe again about a refund still 'requested'.
    retry_after      timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);
CREATE INDEX refunds_requested_idx ON refunds (retry_after) WHERE status = 'requested';

-- Every Stripe event applied, by its id, recorded in the transaction of its effect: a webhook
-- delivered twice (Stripe retries, replays) finds its id and changes nothing.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stripe_events_received_idx ON stripe_events (received_at);

-- Bookings booking announced cancelled: their open intents are canceled, the money they took
-- refunded by `refund_percent` (100 unless the booking was confirmed when it was cancelled).
-- Kept until everything is settled, and after: a payment that succeeds later (the customer paid
-- as the hold expired) finds its booking here and is refunded in full.
CREATE TABLE cancelled_bookings (
    booking_id     uuid PRIMARY KEY,
    refund_percent integer NOT NULL CHECK (refund_percent BETWEEN 0 AND 100),
    reason         text,
    cancelled_at   timestamptz NOT NULL DEFAULT now(),
    -- When reconciliation may try again to settle it (a lease while one process works on it).
    check_after    timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz
);

CREATE INDEX cancelled_bookings_unsettled_idx ON cancelled_bookings (check_after)
    WHERE settled_at IS NULL;

-- Idempotency-Key of POST /api/payments/create-intent, per user: the key names one payment
-- attempt. The answer is rebuilt from it (the client secret is asked of Stripe again rather
-- than stored: Stripe asks that it never be kept or logged).
CREATE TABLE intent_requests (
    user_id         uuid NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    payment_id      uuid NOT NULL REFERENCES payments (id),
    response_status integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);

CREATE INDEX intent_requests_created_idx ON intent_requests (created_at);
