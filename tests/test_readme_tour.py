"""The README's short tour, run as its reader runs it, twice in a row: the shell block of "A short
tour", against this run's platform (its ports in place of those of `./ops/dev up`) with the demo
data loaded. Every step works; the booking is paid, confirmed, seen live, and its e-mails arrive."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.request

import pytest

from catalog.config import Config as CatalogConfig
from catalog.seed import seed
from common.config import load_config
from ops.paths import ROOT
from ops.stack import Stack
from tests.conftest import call

README_PORTS = {"gateway": "localhost:8080", "smtp": "localhost:1080", "stripe": "localhost:12111"}


def tour_script(platform: dict[str, str]) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"## A short tour\n.*?```sh\n(.*?)```", text, re.S)
    assert found, "the README has no shell block under 'A short tour'"
    script = found.group(1)
    for name, address in README_PORTS.items():
        assert address in script, f"the tour no longer uses {address}"
        script = script.replace(address, platform[name].removeprefix("http://"))
    return script


def sink_subjects(platform: dict[str, str], address: str) -> list[str]:
    with urllib.request.urlopen(f"{platform['smtp']}/messages?to={address}", timeout=10) as resp:
        return [message["subject"] for message in json.loads(resp.read())["items"]]


# Twice the tour's own time (its WebSocket watcher listens 15 s), and the platform's start.
@pytest.mark.timeout(300)
def test_the_readme_tour_books_pays_and_mails_and_runs_again(stack: Stack, platform) -> None:
    asyncio.run(seed(load_config(CatalogConfig, stack.env_for("catalog"))))
    script = tour_script(platform)

    for run in (1, 2):
        result = subprocess.run(["sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                                timeout=180, check=False)
        out = result.stdout

        assert result.returncode == 0, out + result.stderr
        assert "in the answer" not in result.stderr and "Traceback" not in result.stderr, (
            result.stderr)
        assert ('"error": "EMAIL_EXISTS"' in out) == (run == 2)
        assert re.search(r'"status": ?"confirmed", ?"paymentStatus": ?"paid"', out), out
        assert '"subject": "Your booking is confirmed: Circuit gastronomique' in out
        assert 'websocket: {"type":"tour.availability.changed"' in out, out

    status, session, _ = call("POST", platform["gateway"] + "/api/auth/login",
                              {"email": "ada@example.com", "password": "Secret123"})
    assert status == 200, session
    status, mine, _ = call("GET", platform["gateway"] + "/api/bookings",
                           token=session["accessToken"])
    assert status == 200 and [b["status"] for b in mine["items"]] == ["confirmed", "confirmed"]
    subjects = sink_subjects(platform, "ada@example.com")
    assert sum(s.startswith("Your booking is confirmed") for s in subjects) == 2
    assert sum(s.startswith("Payment received") for s in subjects) == 2
