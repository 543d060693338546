-- A booking: seats held at catalog for one departure, the contact, the price as catalog gave it,
-- and where it stands in the state machine (booking/states.py).
CREATE TABLE bookings (
    id                  uuid PRIMARY KEY,
    user_id             uuid NOT NULL,
    tour_id             uuid NOT NULL,
    departure_id        uuid NOT NULL,
    tour_title          text NOT NULL,
    tour_date           date NOT NULL,
    participants        integer NOT NULL CHECK (participants BETWEEN 1 AND 50),
    -- Money in minor units, as catalog priced it when the seats were held.
    unit_price          bigint NOT NULL CHECK (unit_price >= 0),
    total_amount        bigint NOT NULL CHECK (total_amount = unit_price * participants),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    contact_name        text NOT NULL,
    contact_email       text NOT NULL,
    contact_phone       text,
    special_requests    text,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'confirmed', 'completed', 'cancelled')),
    payment_status      text NOT NULL DEFAULT 'unpaid'
                        CHECK (payment_status IN ('unpaid', 'processing', 'paid', 'failed',
                                                  'refunded', 'partially_refunded')),
    refunded_amount     bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    expires_at          timestamptz NOT NULL,
    confirmed_at        timestamptz,
    cancelled_at        timestamptz,
    completed_at        timestamptz,
    cancellation_reason text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bookings_user_created_idx ON bookings (user_id, created_at DESC, id);
CREATE INDEX bookings_created_idx ON bookings (created_at DESC, id);
CREATE INDEX bookings_tour_date_idx ON bookings (tour_id, tour_date);
-- What the jobs scan: pending bookings by expiry, confirmed ones by departure date.
CREATE INDEX bookings_pending_expiry_idx ON bookings (expires_at) WHERE status = 'pending';
CREATE INDEX bookings_confirmed_date_idx ON bookings (tour_date) WHERE status = 'confirmed';

-- One row per booking request, written BEFORE catalog is asked for seats: it fixes the booking
-- id, so a retry of a request that crashed or timed out reuses the same id and catalog's hold
-- for that id (holds are idempotent by booking id). A request with an Idempotency-Key keeps its
-- row, with the response, to replay it; a request without one drops its row once answered.
-- Rows left unanswered past their lease mark holds nobody will use; a job releases them.
CREATE TABLE booking_requests (
    booking_id      uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    idempotency_key text,
    request_hash    text NOT NULL,
    lease_until     timestamptz NOT NULL,
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    CHECK ((response_status IS NULL) = (answered_at IS NULL))
);

-- Keys are per user: two users may pick the same key.
CREATE UNIQUE INDEX booking_requests_key_idx ON booking_requests (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX booking_requests_unanswered_idx ON booking_requests (lease_until)
    WHERE answered_at IS NULL;
CREATE INDEX booking_requests_answered_idx ON booking_requests (answered_at)
    WHERE answered_at IS NOT NULL;
