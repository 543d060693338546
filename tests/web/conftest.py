"""The web site in a real headless Chromium (Debian's, driven by Playwright) on every service
running as a process: fixtures for browsers and travellers, the accessibility check (axe-core,
injected into the page) and the screenshots of each main page at phone and desktop widths."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from common.testing import TEST_PASSWORD
from ops.browser import CHROMIUM, axe_script
from ops.paths import ROOT
from tests.conftest import call, register

# Without the background-networking switches Chromium's own connections fail on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("WEB_SCREENSHOTS") or ROOT / ".run" / "screenshots")
PHONE, DESKTOP = {"width": 360, "height": 740}, {"width": 1280, "height": 860}
# Each expectation polls until this deadline: a loaded 2-core machine can take seconds.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def playwright(platform: dict[str, str], admin_token: str) -> Iterator[Playwright]:
    """Playwright's loop runs in this thread while a module of browser tests runs: what the
    session's fixtures set up with asyncio (the stack's databases, the admin) comes first, and
    the loop is gone before the next module's tests (which may run their own loops)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: ./ops/dev test installs it (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def site(platform: dict[str, str]) -> str:
    """The site's address: the gateway, as a visitor types it."""
    return platform["gateway"]


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(chromium: Browser, site: str) -> Iterator[NewPage]:
    """`new_page(locale="fr-FR")`: a page in a browser profile of its own (its own cookies)."""
    contexts: list[BrowserContext] = []

    def make(*, locale: str = "en-GB", viewport: dict[str, int] | None = None) -> Page:
        context = chromium.new_context(base_url=site, locale=locale,
                                       viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def check_accessibility(page: Page) -> None:
    """axe-core on the page as it stands: no serious or critical violation."""
    # Evaluated through the browser's debugging protocol, which our CSP rightly does not allow
    # to pages: an injected <script> would be refused.
    page.evaluate(axe_script().read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    assert result == [], f"{page.url}: " + json.dumps(result, indent=1)


def screenshot(page: Page, name: str) -> None:
    """The page at desktop width as it is, and at phone width, into the ignored folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    if size:
        page.set_viewport_size(size)


def main_page(page: Page, name: str) -> None:
    """What every main page gets: the accessibility check and its screenshots."""
    page.wait_for_load_state("load")
    check_accessibility(page)
    screenshot(page, name)


def new_tour(gateway: str, admin_token: str, *, capacity: int = 10, title: str | None = None,
             days_ahead: int = 20, price: int = 4500) -> dict[str, Any]:
    """An active tour with one departure; the tour with `date` set to the departure's."""
    title = title or f"Harbour walk {uuid.uuid4().hex[:6]}"
    status, tour, _ = call("POST", gateway + "/api/tours", {
        "title": title, "summary": "Old docks, fish market and the lighthouse, on foot.",
        "description": "Three hours with a local guide.\n\nEnds with tea by the lighthouse.",
        "price": price, "currency": "EUR", "duration": 3, "durationUnit": "hours",
        "difficulty": "easy", "maxGroupSize": 10, "ratingsAverage": 4.7,
        "ratingsQuantity": 12}, token=admin_token)
    assert status == 201, tour
    when = (datetime.now(UTC).date() + timedelta(days=days_ahead)).isoformat()
    status, departure, _ = call("POST", f"{gateway}/api/tours/{tour['id']}/departures",
                                {"date": when, "capacity": capacity}, token=admin_token)
    assert status == 201, departure
    return {**tour, "date": when}


def traveller(gateway: str, first_name: str = "Tess") -> dict[str, Any]:
    """A registered traveller (through the API): its register answer, and its password."""
    return {**register(gateway, first_name), "password": TEST_PASSWORD}


def staff(gateway: str, admin_token: str, role: str, first_name: str) -> dict[str, Any]:
    """A traveller an admin gave `role` (`manager`, `admin`), to log in afresh."""
    who = traveller(gateway, first_name)
    status, body, _ = call("PATCH", f"{gateway}/api/admin/users/{who['user']['id']}",
                           {"role": role}, token=admin_token)
    assert status == 200, body
    return {**who, "user": body}


def log_in(page: Page, who: dict[str, Any], next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("E-mail address").fill(who["user"]["email"])
    page.get_by_label("Password").fill(who["password"])
    page.get_by_role("button", name="Log in").last.click()
    page.wait_for_url(f"**{next_path}")


def mails_to(sink: str, address: str) -> list[dict[str, Any]]:
    status, body, _ = call("GET", f"{sink}/messages?to={address}")
    assert status == 200, body
    return list(body["items"])


def wait_until(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s (last: {result!r})")
        time.sleep(0.1)
