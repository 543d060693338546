"""Exception types of payments shared by several of its modules."""

from common.errors import NotFound


class PaymentNotFound(NotFound):
    code, message = "PAYMENT_NOT_FOUND", "No such payment"
