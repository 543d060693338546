"""Money, dates and templates as messages show them: minor units by the currency's decimals,
unambiguous dates, and every template complete and parseable before the service starts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import jinja2
import pytest

from notify.formatting import day, mask, moment, money
from notify.rendering import FOLDER, Templates


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (8999, "EUR", "89.99 EUR"), (9000, "usd", "90.00 USD"), (5, "GBP", "0.05 GBP"),
    (123456789, "EUR", "1,234,567.89 EUR"), (5000, "JPY", "5,000 JPY"), (990, "KRW", "990 KRW"),
    (12345, "KWD", "12.345 KWD"), (0, "EUR", "0.00 EUR")])
def test_amounts_in_minor_units_read_as_people_write_them(amount: int, currency: str,
                                                           shown: str) -> None:
    assert money(amount, currency) == shown


def test_dates_and_moments_cannot_be_misread() -> None:
    assert day(date(2027, 3, 4)) == "Thursday 4 March 2027"
    assert moment(datetime(2027, 3, 4, 9, 5, tzinfo=UTC)) == "4 March 2027, 09:05 UTC"


def test_logs_show_recipients_masked() -> None:
    assert mask("cora.traveller@example.com") == "c***@example.com"
    assert mask("+33612345678") == "+33***78"


def test_every_template_parses_and_every_e_mail_has_its_three_parts() -> None:
    templates = Templates()

    templates.check()

    assert templates.names() == {
        "booking_confirmed", "booking_cancelled", "booking_completed", "booking_updated",
        "payment_succeeded", "payment_failed", "payment_refunded", "availability_low",
        "sms_booking_confirmed", "sms_booking_cancelled", "sms_payment_failed"}


def test_a_template_missing_a_part_or_broken_stops_the_start(tmp_path: Path) -> None:
    for source in FOLDER.iterdir():
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "booking_completed.html").unlink()
    with pytest.raises(FileNotFoundError, match=r"booking_completed lacks booking_completed\.html"):
        Templates(tmp_path).check()
    (tmp_path / "booking_completed.html").write_text("{% if %}")
    with pytest.raises(jinja2.TemplateSyntaxError):
        Templates(tmp_path).check()


def test_a_value_a_template_needs_but_lacks_is_an_error_not_a_blank() -> None:
    with pytest.raises(jinja2.UndefinedError):
        Templates().email("booking_completed", {"name": "Cora"})


def test_a_long_tour_title_never_cuts_the_link_out_of_an_sms() -> None:
    url = "https://tourbook.example/bookings/4aa8c1e2-5d3b-4f7e-9a1c-2b3d4e5f6a7b"
    context = {"tour_title": "Sunrise kayak and snorkelling along the Calanques " * 8,
               "tour_date": date(2027, 3, 14), "participants": 2, "booking_url": url,
               "pay_url": url, "expired": False, "refund": "coming",
               "expires_at": datetime(2027, 3, 1, 10, 15, tzinfo=UTC)}

    for name in ("sms_booking_confirmed", "sms_booking_cancelled", "sms_payment_failed"):
        text = Templates().sms(name, context)

        assert len(text) <= 320, text  # the title is shortened, not the link
        assert text.endswith(url) and "Sunrise kayak" in text
        assert "…" not in text  # outside GSM-7, it would bill every segment as UCS-2
