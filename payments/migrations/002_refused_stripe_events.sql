-- Signed webhook deliveries that were not events payments can read (a field missing, of the
-- wrong type, out of range): answered 400 and kept here with why, one row per delivery, so an
-- operator can tell which Stripe event was refused. Not in stripe_events: a refused event was not
-- applied, and once our reading of it is fixed, Stripe's next retry must still apply it.
CREATE TABLE refused_stripe_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL when the body names no readable id (or type).
    event_id   text,
    event_type text,
    reason     text NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refused_stripe_events_event_idx ON refused_stripe_events (event_id);
CREATE INDEX refused_stripe_events_refused_idx ON refused_stripe_events (refused_at);
