-- How many seats one booking may take is the tour's maxGroupSize, which catalog checks; booking's
-- own cap of 50 refused groups that catalog's tours take (catalog accepts up to 10 000).
ALTER TABLE bookings DROP CONSTRAINT bookings_participants_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_participants_check
    CHECK (participants BETWEEN 1 AND 10000);

-- A replayed answer must be the first answer byte for byte: json keeps the text as written,
-- where jsonb reorders the keys.
ALTER TABLE booking_requests ALTER COLUMN response_body TYPE json USING response_body::json;

-- Set by the abandoned-hold job, in the transaction that takes the request, before it asks
-- catalog to release the hold: from then on the request may not store its booking, even if
-- catalog's answer to the release is lost. The row goes once catalog confirmed the release.
ALTER TABLE booking_requests ADD COLUMN abandoned_at timestamptz;
