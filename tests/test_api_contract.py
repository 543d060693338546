"""The platform keeps the contract it publishes: schemathesis reads the gateway's merged
`/openapi.json` and sends generated requests, valid and invalid, to every documented operation of
auth, catalog, booking and the gateway, through the gateway, on real processes: once with a
traveller's token, once with an admin's. No answer may be a server error, and every answer must
have a documented status, content type and schema.

The run is bounded (examples per operation) and deterministic (derandomized generation), and runs
in a temporary directory so that none of schemathesis's files lands in the work tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.tests.test_api_contract import check_contract
from tests.conftest import register

EXAMPLES_PER_OPERATION = 15
# Operations a traveller's generated requests must get through (2xx), so that their success
# answers were checked against the schema too.
ACCEPTED = {
    "GET /api/tours", "GET /api/categories", "GET /api/destinations", "GET /api/bookings",
    "GET /api/auth/profile",
}
# With an admin's token the writes get through too.
ACCEPTED_FOR_ADMINS = {"POST /api/tours", "POST /api/categories", "POST /api/destinations"}


@pytest.mark.parametrize("who", ["traveller", "admin"])
async def test_every_operation_of_the_platform_keeps_its_contract(platform, admin_token: str,
                                                                  who: str, tmp_path: Path):
    token = (admin_token if who == "admin"
             else register(platform["gateway"], "Carla")["accessToken"])

    _, accepted, output = await check_contract(
        platform["gateway"] + "/openapi.json", token,
        examples=EXAMPLES_PER_OPERATION, request_timeout=15, cwd=tmp_path)

    assert accepted >= ACCEPTED | (ACCEPTED_FOR_ADMINS if who == "admin" else set()), output
