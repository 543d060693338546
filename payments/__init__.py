"""payments: Stripe PaymentIntents for bookings, signed webhooks applied once, refunds (by an
administrator, and when a booking is cancelled), reconciliation, and the `payment.*` events."""
