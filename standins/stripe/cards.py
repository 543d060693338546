"""Stripe's documented test cards: what each number (and its `pm_card_*` PaymentMethod) does.

A decline is the error Stripe returns for that card: its `code`, `decline_code`, message and
`param`. Numbers outside the table behave as in Stripe's test mode: a number that fails the Luhn
check is `incorrect_number`, any other is declined as a live card used in test mode.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    decline_code: str
    message: str = "Your card was declined."
    code: str = "card_declined"
    param: str | None = None
    blocked: bool = False
    """Refused by Radar before reaching the network, rather than by the issuer."""


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    funding: str = "credit"
    country: str = "US"
    aliases: tuple[str, ...] = ()
    """Its test PaymentMethod ids (`pm_card_visa`...)."""
    decline: Decline | None = None
    needs_authentication: bool = False
    """A 3D Secure card: Stripe answers `requires_action`, which the stand-in does not emulate."""


def _declined(number: str, name: str, decline: Decline, *extra: str) -> TestCard:
    # Stripe accepts both spellings of each decline PaymentMethod.
    return TestCard(number, "visa", decline=decline,
                    aliases=(f"pm_card_{name}", f"pm_card_visa_{name}", *extra))


CARDS: tuple[TestCard, ...] = (
    TestCard("4242424242424242", "visa", aliases=("pm_card_visa", "pm_card_us")),
    TestCard("4000056655665556", "visa", "debit", aliases=("pm_card_visa_debit",)),
    TestCard("5555555555554444", "mastercard", aliases=("pm_card_mastercard",)),
    TestCard("2223003122003222", "mastercard"),
    TestCard("5200828282828210", "mastercard", "debit", aliases=("pm_card_mastercard_debit",)),
    TestCard("5105105105105100", "mastercard", "prepaid",
             aliases=("pm_card_mastercard_prepaid",)),
    TestCard("378282246310005", "amex", aliases=("pm_card_amex",)),
    TestCard("371449635398431", "amex"),
    TestCard("6011111111111117", "discover", aliases=("pm_card_discover",)),
    TestCard("3056930009020004", "diners", aliases=("pm_card_diners",)),
    TestCard("3566002020360505", "jcb", aliases=("pm_card_jcb",)),
    TestCard("6200000000000005", "unionpay", aliases=("pm_card_unionpay",)),
    TestCard("4000002500000003", "visa", country="FR", aliases=("pm_card_fr",)),
    TestCard("4000002760000016", "visa", country="DE", aliases=("pm_card_de",)),
    TestCard("4000003800000008", "visa", country="IT", aliases=("pm_card_it",)),
    TestCard("4000007240000007", "visa", country="ES", aliases=("pm_card_es",)),
    TestCard("4000005280000002", "visa", country="NL", aliases=("pm_card_nl",)),
    TestCard("4000008260000000", "visa", country="GB", aliases=("pm_card_gb",)),
    _declined("4000000000000002", "chargeDeclined", Decline("generic_decline")),
    _declined("4000000000009995", "chargeDeclinedInsufficientFunds",
              Decline("insufficient_funds", "Your card has insufficient funds.")),
    _declined("4000000000009987", "chargeDeclinedLostCard", Decline("lost_card")),
    _declined("4000000000009979", "chargeDeclinedStolenCard", Decline("stolen_card")),
    _declined("4000000000000069", "chargeDeclinedExpiredCard",
              Decline("expired_card", "Your card has expired.", "expired_card", "exp_month")),
    _declined("4000000000000127", "chargeDeclinedIncorrectCvc",
              Decline("incorrect_cvc", "Your card's security code is incorrect.",
                      "incorrect_cvc", "cvc")),
    _declined("4000000000000119", "chargeDeclinedProcessingError",
              Decline("processing_error", "An error occurred while processing your card. "
                      "Try again in a little bit.", "processing_error")),
    _declined("4000000000006975", "chargeDeclinedVelocityLimitExceeded",
              Decline("card_velocity_exceeded", "Your card was declined for making repeated "
                      "attempts too frequently or exceeding its amount limit.")),
    TestCard("4000000000000341", "visa", aliases=("pm_card_chargeCustomerFail",),
             decline=Decline("generic_decline")),
    TestCard("4100000000000019", "visa", aliases=("pm_card_radarBlock",),
             decline=Decline("fraudulent", blocked=True)),
    TestCard("4000002500003155", "visa", needs_authentication=True,
             aliases=("pm_card_authenticationRequiredOnSetup",)),
    TestCard("4000002760003184", "visa", needs_authentication=True,
             aliases=("pm_card_authenticationRequired",)),
    TestCard("4000000000003220", "visa", needs_authentication=True,
             aliases=("pm_card_threeDSecure2Required",)),
)

BY_NUMBER = {card.number: card for card in CARDS}
BY_ALIAS = {alias: card for card in CARDS for alias in card.aliases}

LIVE_CARD_IN_TEST_MODE = Decline(
    "test_mode_live_card", "Your card was declined. Your request was in test mode, but used a "
    "non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.")


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    """The network a number outside the table belongs to, from its leading digits."""
    prefixes = (("34", "amex"), ("37", "amex"), ("6011", "discover"), ("65", "discover"),
                ("62", "unionpay"), ("35", "jcb"), ("36", "diners"), ("30", "diners"),
                ("38", "diners"), ("4", "visa"))
    for prefix, brand in prefixes:
        if number.startswith(prefix):
            return brand
    if number[:2] in {str(n) for n in range(51, 56)} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    return "unknown"


def card_for_number(number: str) -> TestCard:
    """The table's card, or a stranger that Stripe's test mode declines."""
    known = BY_NUMBER.get(number)
    if known is not None:
        return known
    return TestCard(number, brand_of(number), decline=LIVE_CARD_IN_TEST_MODE)
