"""Typed keys for what the booking app holds."""

from aiohttp import web

from booking.bookings import Bookings
from booking.catalog import CatalogClient
from booking.changes import Changes
from booking.jobs import Jobs
from booking.metrics import BookingMetrics
from booking.payments import PaymentsClient

BOOKINGS: web.AppKey[Bookings] = web.AppKey("bookings", Bookings)
CATALOG: web.AppKey[CatalogClient] = web.AppKey("catalog", CatalogClient)
CHANGES: web.AppKey[Changes] = web.AppKey("changes", Changes)
PAYMENTS: web.AppKey[PaymentsClient] = web.AppKey("payments", PaymentsClient)
JOBS: web.AppKey[Jobs] = web.AppKey("jobs", Jobs)
BOOKING_METRICS: web.AppKey[BookingMetrics] = web.AppKey("booking_metrics", BookingMetrics)
