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

from gateway.tests.test_api_contract import LOGOUT, check_contract
from tests.conftest import register

EXAMPLES_PER_OPERATION = 15
# Operations a traveller's generated requests must get through (2xx), so that their success
# answers were checked against the schema too.
ACCEPTED = {
    "GET /api/tours", "GET /api/categories", "GET /api/destinations", "GET /api/bookings",
    "GET /api/auth/profile",
}
# With an admin's token the writes get through too, and the user list.
ACCEPTED_FOR_ADMINS = {"POST /api/tours", "POST /api/categories", "POST /api/destinations",
                       "GET /api/admin/users"}
# Logging out ends the token the run uses (the gateway's own contract test covers it), and
# changing users would disable or demote the accounts of the other tests (auth's tests cover it).
LEFT_OUT = ("--exclude-name", LOGOUT, "--exclude-name", "PATCH /api/admin/users/{id}")


@pytest.mark.parametrize("who", ["traveller", "admin"])
async def test_every_operation_of_the_platform_keeps_its_contract(platform, admin_token: str,
                                                                  who: str, tmp_path: Path):
    token = (admin_token if who == "admin"
             else register(platform["gateway"], "Carla")["accessToken"])

    _, accepted, output = await check_contract(
        platform["gateway"] + "/openapi.json", token,
        examples=EXAMPLES_PER_OPERATION, request_timeout=15, cwd=tmp_path, options=LEFT_OUT)

    assert accepted >= ACCEPTED | (ACCEPTED_FOR_ADMINS if who == "admin" else set()), output
