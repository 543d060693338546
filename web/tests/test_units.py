"""The web site's rules that need no server: seat badges, languages, money, covers, where a form
may send the visitor next, the visitor's address behind a proxy, hashed asset names, what each
role is offered, and a refused change of a booking explained next to its field."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from web import i18n
from web.addresses import TRUSTED, visitor_address, visitor_proto
from web.assets import Assets
from web.covers import cover_svg, cover_url
from web.errors import ApiError
from web.revoked import token_identity
from web.roles import may
from web.seats import level
from web.views.changes import change_errors
from web.visitor import safe_next

WEB = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("available", "capacity", "expected"), [
    (0, 20, "sold-out"), (1, 20, "last"), (2, 20, "last"), (3, 20, "limited"),
    (4, 20, "limited"), (5, 20, "filling"), (10, 20, "filling"), (11, 20, "open"),
    (20, 20, "open"), (1, 10, "last"), (2, 10, "limited"), (5, 10, "filling")])
def test_seat_badges_follow_the_originals_thresholds(available: int, capacity: int,
                                                     expected: str) -> None:
    assert level(available, capacity) == expected


def test_the_scripts_badge_rule_is_the_servers() -> None:
    script = (WEB / "static" / "js" / "live.js").read_text()
    assert "share <= 0.10" in script and "share <= 0.20" in script and "share <= 0.50" in script


@pytest.mark.parametrize(("header", "expected"), [
    ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("en-GB,en;q=0.9", "en"), ("de-DE,fr;q=0.5", "fr"),
    ("de, it", "en"), ("", "en"), ("en;q=0.2, fr;q=0.9", "fr"), ("FR", "fr")])
def test_the_language_comes_from_accept_language(header: str, expected: str) -> None:
    assert i18n.negotiate(header, "en") == expected


def test_every_message_of_the_site_has_its_french() -> None:
    extracted = extract_from_dir(
        str(WEB), [("**/templates/**.html", "jinja2"), ("**.py", "python")],
        {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)})
    wanted = {m[2] if isinstance(m[2], str) else m[2][0] for m in extracted
              if "/tests/" not in m[0]}
    with (WEB / "translations" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale="fr")
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in catalogue if m.id}
    assert sorted(wanted - set(translated)) == []
    assert [k for k, v in translated.items() if not v or (isinstance(v, tuple) and not all(v))] \
        == []


def test_prices_are_formatted_for_the_language_in_the_tours_currency() -> None:
    assert i18n.format_money(8999, "EUR", "fr") == "89,99\u00a0€"
    assert i18n.format_money(8999, "EUR", "en") == "€89.99"
    assert i18n.format_money(1500, "JPY", "en") == "¥1,500"  # no minor unit
    assert i18n.format_converted(10000, "EUR", "USD", {"EUR": 1, "USD": 1.08}, "en") \
        == "≈ $108.00"
    assert i18n.format_converted(10000, "EUR", "EUR", {"EUR": 1}, "en") is None
    assert i18n.format_converted(10000, "SEK", "EUR", {"EUR": 1}, "en") is None


def test_each_tour_gets_its_own_cover_and_keeps_it() -> None:
    first, again, other = cover_svg("trek-atlas"), cover_svg("trek-atlas"), cover_svg("bali")
    assert first == again != other
    assert ET.fromstring(first).tag == "{http://www.w3.org/2000/svg}svg"  # noqa: S314 - our own SVG
    assert cover_url({"slug": "x", "imageCover": "https://images.tourbook.example/x.jpg"}) \
        == "/static/covers/x.svg"
    assert cover_url({"slug": "x", "imageCover": "/media/tours/x.webp"}) == "/media/tours/x.webp"
    assert cover_url({"slug": "x", "imageCover": "//evil.example/x.jpg"}) \
        == "/static/covers/x.svg"


@pytest.mark.parametrize(("target", "expected"), [
    ("/bookings?page=2", "/bookings?page=2"), ("https://evil.example/", "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("", "/"), (None, "/"),
    ("bookings", "/")])
def test_forms_only_send_visitors_to_pages_of_this_site(target: str | None,
                                                        expected: str) -> None:
    assert safe_next(target) == expected


def _request(peer: str, headers: dict[str, str]) -> object:
    request = make_mocked_request("GET", "/", headers=headers,
                                  transport=_Transport(peer))
    request.app[TRUSTED] = (ipaddress.ip_network("127.0.0.1/32"),)
    return request


class _Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 40000) if name == "peername" else default


def test_the_visitors_address_is_believed_from_the_trusted_gateway_only() -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    behind = _request("127.0.0.1", forwarded)
    direct = _request("198.51.100.7", forwarded)
    assert (visitor_address(behind), visitor_proto(behind)) == ("203.0.113.9", "https")  # type: ignore[arg-type]
    assert (visitor_address(direct), visitor_proto(direct)) == ("198.51.100.7", "http")  # type: ignore[arg-type]


def test_assets_are_named_by_their_content(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_text("body { color: red }")
    first = Assets(tmp_path).url("css/site.css")
    (tmp_path / "css" / "site.css").write_text("body { color: blue }")
    second = Assets(tmp_path)
    assert first != second.url("css/site.css")
    assert second.url("css/site.css").startswith("/static/css/site.")
    assert second.files[second.url("css/site.css").removeprefix("/static/")].content_type \
        == "text/css; charset=utf-8"


@pytest.mark.parametrize(("role", "offered"), [
    ("admin", {"tours", "bookings", "payments", "refund", "resolve", "users", "breakers"}),
    ("manager", {"tours", "bookings", "payments"}),
    ("customer", set()), (None, set())])
def test_each_role_is_offered_what_the_api_lets_it_do(role: str | None,
                                                      offered: set[str]) -> None:
    actions = {"tours", "bookings", "payments", "refund", "resolve", "users", "breakers"}
    user = {"role": role} if role else None
    assert {a for a in actions if may(user, a)} == offered


@pytest.mark.parametrize(("answer", "field", "text"), [
    ({"error": "INSUFFICIENT_AVAILABILITY", "details": {"availableSeats": 2, "requested": 3}},
     "participants", "Only 2 more seats are free on this date."),
    ({"error": "INSUFFICIENT_AVAILABILITY", "details": {"availableSeats": 0, "requested": 1}},
     "participants", "No more seats are free on this date."),
    ({"error": "PAYMENT_IN_PROGRESS"}, "participants",
     "A payment of this booking is being processed: it cannot change until the payment ends. "
     "Look again in a minute."),
    ({"error": "VALIDATION_ERROR",
      "details": [{"field": "contact.email", "message": "not an e-mail"}]},
     "email", "Enter a valid e-mail address, such as ada@example.com."),
])
def test_a_refused_change_of_a_booking_is_explained_next_to_its_field(
        answer: dict[str, object], field: str, text: str) -> None:
    errors, _ = change_errors(ApiError(409, {"status": 409, "message": "no", **answer}))
    assert errors[field] == text


def test_a_session_token_that_is_not_a_jwt_is_no_identity_to_look_up() -> None:
    assert token_identity("access-token-secret") is None
