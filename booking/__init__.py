"""booking: bookings and their state machine, seat holds at catalog, expiry and completion jobs,
the payment events that confirm bookings, and the `booking.*` events."""
