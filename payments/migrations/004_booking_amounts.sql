-- The total booking last announced for a pending booking (PUT /internal/payments/booking/{id}/
-- amount), and how many times it did: a create-intent that read the booking while it changed
-- finds the version moved under its lock and takes this amount instead of the one it read.
CREATE TABLE booking_amounts (
    booking_id uuid PRIMARY KEY,
    amount     bigint NOT NULL CHECK (amount > 0),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    version    bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX booking_amounts_updated_idx ON booking_amounts (updated_at);
