"""The pages, by area: tours, account, bookings, checkout, cart."""
