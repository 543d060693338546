-- The delivery log: one row per message an event calls for, on one channel, to one recipient.
-- The row is written before the message is sent and records each try: a redelivered event finds
-- it and never sends a message already sent, refused for good, or skipped; a message still
-- pending (a transient failure) is tried again with the event's retry.
CREATE TABLE deliveries (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL,
    event_type   text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms')),
    -- The address or phone number; '' for an SMS skipped for want of a number.
    recipient    text NOT NULL,
    -- The traveller the message is about; NULL for operators' alerts.
    user_id      uuid,
    booking_id   uuid,
    template     text NOT NULL,
    subject      text,
    -- pending: not sent yet (or failed transiently, to be tried again); sent; failed: refused for
    -- good (permanent) or given up after the last retry (not permanent: a replay of the event
    -- from the dead-letter queue tries it again); skipped: not to be sent (opted out, no phone
    -- number, nothing left to pay...), the reason in last_error.
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    permanent    boolean NOT NULL DEFAULT false,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   text,
    -- The SMTP Message-ID, or the SMS provider's id of the message.
    provider_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (event_id, channel, recipient)
);

CREATE INDEX deliveries_created_idx ON deliveries (created_at DESC, id);
CREATE INDEX deliveries_user_created_idx ON deliveries (user_id, created_at DESC, id);
CREATE INDEX deliveries_booking_idx ON deliveries (booking_id);
