-- Seats: each departure counts its own (DESIGN §4), and every change is keyed by a booking id.

CREATE TABLE departures (
    id         uuid PRIMARY KEY,
    tour_id    uuid NOT NULL REFERENCES tours (id),
    date       date NOT NULL,
    capacity   integer NOT NULL CHECK (capacity >= 1),
    held       integer NOT NULL DEFAULT 0,
    booked     integer NOT NULL DEFAULT 0,
    is_active  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT departures_tour_date_key UNIQUE (tour_id, date),
    -- The seat invariant. Every change is one conditional UPDATE that keeps it; this is the
    -- backstop: a statement that would break it fails instead of overbooking.
    CONSTRAINT departures_seat_invariant
        CHECK (held >= 0 AND booked >= 0 AND held + booked <= capacity)
);

-- Search's date range filter and next-departure lookups go through (tour_id, date) of the unique
-- key; this one serves "which departures are on these dates" across tours.
CREATE INDEX departures_active_date_idx ON departures (date) WHERE is_active;

-- One row per booking id: a hold is taken, confirmed and released at most once each.
CREATE TABLE seat_holds (
    booking_id   uuid PRIMARY KEY,
    departure_id uuid NOT NULL REFERENCES departures (id),
    seats        integer NOT NULL CHECK (seats >= 1),
    state        text NOT NULL CHECK (state IN ('held', 'booked', 'released')),
    -- Why a released hold was released: 'cancelled' (booking said so) is final; 'expired' (the
    -- sweeper took it for an orphan) may still be confirmed if its seats are free.
    release_reason text CHECK (release_reason IN ('cancelled', 'expired')),
    -- The price when the seats were taken: a repeated hold answers what the first one did, even
    -- if an admin changed the tour's price in between.
    unit_price   integer NOT NULL CHECK (unit_price >= 0),
    currency     text NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seat_holds_released_has_reason
        CHECK ((state = 'released') = (release_reason IS NOT NULL))
);

CREATE INDEX seat_holds_departure_id_idx ON seat_holds (departure_id);
-- The sweeper's scan touches only holds still waiting for their booking.
CREATE INDEX seat_holds_expiry_idx ON seat_holds (expires_at) WHERE state = 'held';
