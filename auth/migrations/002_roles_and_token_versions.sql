-- The original's three roles: managers run tours, departures and bookings; admins also users,
-- refunds and circuit breakers.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('customer', 'manager', 'admin'));

-- Raised by every change that must end the access tokens issued before it (a role change, a
-- disable); access tokens carry it as the `ver` claim.
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;

-- The administrators' user list, newest first.
CREATE INDEX users_created_at_idx ON users (created_at DESC, id);
