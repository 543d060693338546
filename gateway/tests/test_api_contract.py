"""The API keeps the contract it publishes: schemathesis reads the gateway's `/openapi.json` and
sends generated requests, valid and invalid, to every documented operation through the gateway
(in front of the real auth; the stand-ins publish no document yet). No answer may be a server
error, and every answer must have a documented status, content type and schema.

The run is bounded (examples per operation) and deterministic (derandomized generation), and runs
in a temporary directory so that none of schemathesis's files lands in the work tree.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.testing import bearer, register
from gateway.tests.conftest import MakeGateway

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance",
          "content_type_conformance")
EXAMPLES_PER_OPERATION = 20
# What is documented today: auth's 10 operations and the gateway's 4; six are for admins (the
# customer's token sees them answer 403, as documented).
OPERATIONS = 14
# Logging out ends the token the whole run uses (401 AUTH_TOKEN_REVOKED from then on): it runs
# on its own, with a token of its own.
LOGOUT = "POST /api/auth/logout"
# Operations that must have accepted some generated requests (2xx), so that their success
# responses were checked too, and the customer's token was seen to pass the gateway.
ACCEPTED = {
    "POST /api/auth/register", "GET /api/auth/profile", "PATCH /api/auth/profile",
    "GET /api/auth/.well-known/jwks.json", "GET /circuit-breaker/health",
}


async def check_contract(openapi: str, token: str, *, examples: int, request_timeout: int,
                         cwd: Path, options: Sequence[str] = ("--exclude-name", LOGOUT),
                         ) -> tuple[dict[str, Any], set[str], str]:
    """Run the CHECKS on every operation `openapi` documents (filtered by schemathesis's
    `options`), sending `token`; all must pass. Returns the JSON report, the operations that
    accepted some generated requests (2xx, so their success answers were checked too) and
    schemathesis's output."""
    report_path = cwd / "report.json"
    code, output = await schemathesis(
        "run", openapi,
        "--checks", ",".join(CHECKS),
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(examples),
        "--generation-deterministic",
        "--request-timeout", str(request_timeout),
        "--report", "json", "--report-json-path", str(report_path),
        *options,
        cwd=cwd)

    assert code == 0, output
    report = json.loads(report_path.read_text())
    accepted = {operation for operation, phases in report["valid_rates"].items()
                if any(phase["accepted"] for phase in phases.values())}
    return report, accepted, output


async def schemathesis(*args: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--no-color", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_every_documented_operation_keeps_its_contract_through_the_gateway(
        make_gateway: MakeGateway, stand_ins, auth_url: str, tmp_path: Path):
    # A user for this test alone: schemathesis logs its session out and rewrites its profile.
    user = register(auth_url, "Carla")
    gateway = await make_gateway()

    report, accepted, output = await check_contract(
        str(gateway.make_url("/openapi.json")), user["accessToken"],
        examples=EXAMPLES_PER_OPERATION, request_timeout=10, cwd=tmp_path)
    leaving = register(auth_url, "Lena")
    logout, logged_out, more = await check_contract(
        str(gateway.make_url("/openapi.json")), leaving["accessToken"],
        examples=EXAMPLES_PER_OPERATION, request_timeout=10, cwd=tmp_path,
        options=("--include-name", LOGOUT))

    assert report["operations"]["tested"] + logout["operations"]["tested"] == OPERATIONS, output
    assert accepted >= ACCEPTED, output
    assert logged_out == {LOGOUT}, more


async def test_text_with_a_nul_character_is_refused_as_invalid_not_a_server_error(
        gateway, auth_url: str):
    """Found by schemathesis (in a longer, randomized run than the one above): PostgreSQL cannot
    store U+0000, and a name holding one used to reach the database and come back as a 500."""
    user = register(auth_url, "Carla")

    response = await gateway.patch("/api/auth/profile", headers=bearer(user),
                                   json={"firstName": "Ca\u0000rla"})

    assert response.status == 400
    assert await response.json() == {
        "status": 400, "error": "VALIDATION_ERROR", "message": "The request is not valid",
        "details": [{"field": "firstName",
                     "message": "must not contain the NUL character (U+0000)"}]}


async def test_json_nested_too_deeply_is_malformed_not_a_server_error(gateway):
    """A body nested past the JSON parser's recursion limit used to surface as a 500."""
    body = '{"email": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = await gateway.post("/api/auth/login", data=body,
                                  headers={"Content-Type": "application/json"})

    assert response.status == 400
    assert await response.json() == {"status": 400, "error": "MALFORMED_JSON",
                                     "message": "The body is nested too deeply"}
