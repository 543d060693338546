"""catalog takes exactly what its OpenAPI document describes: an integer-valued number such as
`4500.0` is an integer (JSON Schema says so), while `0` and `1` are not booleans."""

from __future__ import annotations

import uuid

import pytest

from catalog.tests.conftest import Api


def token() -> str:
    return uuid.uuid4().hex[:8]


async def test_an_integer_written_with_a_fraction_of_zero_is_an_integer(api: Api) -> None:
    tour = await api.tour(price=4500.0, maxGroupSize=12.0, duration=2e0)
    assert (tour["price"], tour["maxGroupSize"], tour["duration"]) == (4500, 12, 2)


@pytest.mark.parametrize("value", [0, 1, "false", "no"])
async def test_a_number_or_a_word_is_not_a_boolean(api: Api, value: object) -> None:
    created = await api.client.post("/api/categories", headers=api.admin,
                                    json={"name": f"Quiet {token()}", "isActive": value})
    body = await created.json()
    assert (created.status, body["error"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == ["isActive"]

    category = await api.create("/api/categories", {"name": f"Kept {token()}"})
    patched = await api.client.patch(f"/api/categories/{category['id']}", headers=api.admin,
                                     json={"isActive": value})
    assert patched.status == 400
    shown = await api.get(f"/api/categories/{category['id']}")
    assert shown["isActive"] is True  # `0` was once taken for false


async def test_the_document_describes_these_types(api: Api) -> None:
    document = await api.get("/openapi.json")
    schemas = document["components"]["schemas"]
    assert schemas["CategoryIn"]["properties"]["isActive"]["type"] == "boolean"
    assert schemas["TourIn"]["properties"]["price"]["type"] == "integer"
