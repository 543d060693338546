-- What the customer paid, in minor units: set when the booking is recorded paid (the payment's
-- amount, which must be the total), so that refunds are measured against money received.
ALTER TABLE bookings ADD COLUMN paid_amount bigint CHECK (paid_amount >= 0);
UPDATE bookings SET paid_amount = total_amount
 WHERE payment_status IN ('paid', 'partially_refunded', 'refunded');

-- A payment.succeeded booking refused to apply because its amount or currency is not the
-- booking's total (or cannot be checked): the booking stays unpaid, and this says why.
CREATE TABLE payment_anomalies (
    event_id          uuid PRIMARY KEY,
    booking_id        uuid NOT NULL,
    payment_id        text,
    payment_intent_id text,
    reason            text NOT NULL,
    amount            bigint,
    currency          text,
    expected_amount   bigint NOT NULL,
    expected_currency text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_anomalies_booking_idx ON payment_anomalies (booking_id, created_at);
