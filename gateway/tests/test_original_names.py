"""The gateway started with the original's names: `ALLOWED_ORIGINS` (or its own `CORS_ORIGIN`)
is the CORS allow-list."""

from __future__ import annotations

import pytest

from gateway.tests.conftest import MakeGateway


@pytest.mark.parametrize("variable", ["ALLOWED_ORIGINS", "CORS_ORIGIN"])
async def test_the_original_s_origins_are_the_cors_allow_list(
        make_gateway: MakeGateway, variable: str) -> None:
    gateway = await make_gateway(**{variable: "https://tours.example,https://admin.tours.example"})

    asked = {"Access-Control-Request-Method": "GET"}
    allowed = await gateway.options("/api/tours", headers={**asked, "Origin": "https://tours.example"})
    default = await gateway.options("/api/tours", headers={**asked, "Origin": "http://localhost:5173"})

    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://tours.example"
    assert default.status == 403
