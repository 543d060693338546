"""Typed keys for what the booking app holds."""

from aiohttp import web

from booking.bookings import Bookings
from booking.changes import Changes
from booking.clients import AuthClient, CatalogClient, PaymentsClient
from booking.jobs import Jobs
from booking.metrics import BookingMetrics

BOOKINGS: web.AppKey[Bookings] = web.AppKey("bookings", Bookings)
CHANGES: web.AppKey[Changes] = web.AppKey("changes", Changes)
JOBS: web.AppKey[Jobs] = web.AppKey("jobs", Jobs)
BOOKING_METRICS: web.AppKey[BookingMetrics] = web.AppKey("booking_metrics", BookingMetrics)
CATALOG: web.AppKey[CatalogClient] = web.AppKey("catalog", CatalogClient)
PAYMENTS: web.AppKey[PaymentsClient] = web.AppKey("payments", PaymentsClient)
AUTH: web.AppKey[AuthClient] = web.AppKey("auth", AuthClient)
