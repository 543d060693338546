-- 'mismatched': Stripe says the attempt's intent succeeded at an amount or currency other than
-- the attempt's. The booking is not paid by it (no payment.succeeded); the money Stripe took
-- waits for an operator (a refund). Not open: the booking may start another attempt.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled', 'refunded',
                      'partially_refunded', 'mismatched'));

-- What Stripe says the intent took, recorded when it succeeds: the attempt's own amount, or
-- for a mismatched one what it took instead, which is what its refunds may add up to.
ALTER TABLE payments ADD COLUMN received_amount bigint CHECK (received_amount > 0);
ALTER TABLE payments ADD COLUMN received_currency text CHECK (received_currency ~ '^[A-Z]{3}$');
ALTER TABLE payments DROP CONSTRAINT payments_check;
ALTER TABLE payments ADD CONSTRAINT payments_refunded_amount_check
    CHECK (refunded_amount >= 0
           AND refunded_amount <= greatest(amount, COALESCE(received_amount, 0)));

-- The admin list of every payment, newest first.
CREATE INDEX payments_created_idx ON payments (created_at DESC, id);

-- What Stripe reported that our records refuse to apply: an intent that succeeded at another
-- amount or currency (amount_mismatch), refunds adding up to more than was paid
-- (refund_exceeds_payment). One row per payment, kind and Stripe object (a redelivery or a
-- second look finds it), kept after it is resolved: by a refund of all the money a mismatched
-- intent took, or by an operator's note.
CREATE TABLE payment_anomalies (
    id                uuid PRIMARY KEY,
    payment_id        uuid NOT NULL REFERENCES payments (id),
    kind              text NOT NULL CHECK (kind IN ('amount_mismatch', 'refund_exceeds_payment')),
    expected_amount   bigint NOT NULL,
    expected_currency text NOT NULL,
    observed_amount   bigint NOT NULL,
    observed_currency text NOT NULL,
    -- The intent, refund or charge at fault, and the webhook event that reported it (NULL when
    -- reconciliation, checkout or a cancellation read it from Stripe).
    stripe_object_id  text NOT NULL,
    stripe_event_id   text,
    detected_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    -- 'refunded', or the note of the administrator (resolved_by) who resolved it.
    resolution        text,
    resolved_by       uuid,
    UNIQUE (payment_id, kind, stripe_object_id)
);

CREATE INDEX payment_anomalies_unresolved_idx ON payment_anomalies (payment_id)
    WHERE resolved_at IS NULL;
