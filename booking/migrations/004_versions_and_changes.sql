-- Every change of a booking row adds one to its version: its ETag, which a change must name in
-- If-Match, so that two tabs cannot overwrite each other.
ALTER TABLE bookings ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- A change of a pending booking's participants moves its hold at catalog and its amount at
-- payments before the booking row commits. This row, committed first, says the booking may be
-- out of step with them until the change ends; the change deletes it in its own transaction.
-- One left behind (the process died, or undoing failed) makes the reconciliation job set
-- catalog and payments back to the booking as committed.
CREATE TABLE booking_changes (
    booking_id  uuid PRIMARY KEY,
    lease_until timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX booking_changes_lease_idx ON booking_changes (lease_until);
