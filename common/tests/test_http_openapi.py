"""`/openapi.json` is a valid OpenAPI 3.1 document generated from the schemas that validate the
requests, for the demo service and for the real auth service."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from auth.app import create_app as create_auth_app
from auth.config import Config as AuthConfig
from auth.keys import ensure_keys
from common.config import load_config
from common.tests import demo_service
from common.tests.support import Keys, demo_config

ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
async def document(aiohttp_client, tmp_path) -> dict[str, Any]:
    client = await aiohttp_client(demo_service.create_app(demo_config(Keys.create(tmp_path))))
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    return body


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """Validates instances against `schema` as it stands in the document (its $refs resolved)."""
    return OAS31Validator({**schema, "components": document["components"]})


def error_responses(operation: dict[str, Any]) -> set[str]:
    return {status for status, response in operation["responses"].items()
            if response.get("content", {}).get("application/json", {}).get("schema") == ERROR_REF}


async def test_the_demo_document_is_valid_openapi_3_1(document):
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "demo"


async def test_every_declared_endpoint_is_documented_once(document):
    assert set(document["paths"]) == {
        "/api/widgets", "/api/widgets/bulk", "/api/widgets/{id}", "/api/widgets/{id}/archive",
        "/api/me", "/api/users/{userId}/widgets", "/api/admin/report", "/api/manager/report",
        "/internal/ping"}
    assert set(document["paths"]["/api/widgets"]) == {"get", "post"}
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_a_body_is_required_unless_every_field_has_a_default(document):
    paths = document["paths"]
    assert paths["/api/widgets"]["post"]["requestBody"]["required"] is True
    assert paths["/api/widgets/{id}/archive"]["post"]["requestBody"]["required"] is False


async def test_a_body_is_documented_by_the_schema_that_validates_it(document):
    create = document["paths"]["/api/widgets"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    validator = schema_validator(document, body)
    assert validator.is_valid({"name": "Anvil", "unitPrice": 1, "contact": {"email": "a@b.c"}})
    for refused in ({"name": "Anvil"}, {"name": "Anvil", "unitPrice": -1},
                    {"name": "Anvil", "unitPrice": 1, "extra": True},
                    {"name": "Anvil", "unitPrice": 1, "contact": {}}):
        assert not validator.is_valid(refused), refused
    assert set(create["responses"]) == {"201", "400", "413"}
    assert error_responses(create) == {"400", "413"}
    success = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema_validator(document, success).is_valid(
        {"id": "w1", "name": "Anvil", "unitPrice": 1, "tags": []})


async def test_query_parameters_are_documented_one_by_one(document):
    listing = document["paths"]["/api/widgets"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"page", "limit", "tag", "q"}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["tag"]["schema"]["type"] == "array"


async def test_path_parameters_and_access_are_documented(document):
    one = document["paths"]["/api/widgets/{id}"]["get"]
    assert one["parameters"] == [{"name": "id", "in": "path", "required": True,
                                  "schema": {"type": "string"}}]
    assert "security" not in one and error_responses(one) == {"404", "409"}
    me = document["paths"]["/api/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}] and "401" in me["responses"]
    admin = document["paths"]["/api/admin/report"]["get"]
    assert admin["security"] == [{"bearerAuth": []}] and {"401", "403"} <= error_responses(admin)
    manager = document["paths"]["/api/manager/report"]["get"]
    assert manager["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= error_responses(manager)
    internal = document["paths"]["/internal/ping"]["get"]
    assert internal["security"] == [{"serviceToken": []}] and internal["tags"] == ["internal"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["serviceToken"] == {"type": "apiKey", "in": "header",
                                       "name": "X-Internal-Token"}


async def test_the_error_envelope_is_documented(document):
    error = document["components"]["schemas"]["Error"]
    validator = schema_validator(document, error)
    assert validator.is_valid({"status": 404, "error": "NOT_FOUND", "message": "No route"})
    assert not validator.is_valid({"error": "NOT_FOUND"})


@pytest.fixture
def auth_database(make_database) -> str:
    return make_database("common_openapi_auth")  # empty: the document needs no tables


@pytest.fixture
async def auth_client(aiohttp_client, auth_database, tmp_path, service_env):
    private, public = tmp_path / "private.pem", tmp_path / "public.pem"
    ensure_keys(private, public)
    config = load_config(AuthConfig, {
        **service_env, "AUTH_DATABASE_URL": auth_database,
        "JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public),
        "AUTH_BCRYPT_ROUNDS": "4"})
    return await aiohttp_client(create_auth_app(config))


async def test_the_auth_service_document_is_valid_openapi_3_1(auth_client):
    resp = await auth_client.get("/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    validate(document, cls=OpenAPIV31SpecValidator)
    paths = document["paths"]
    assert {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/profile",
            "/api/auth/.well-known/jwks.json", "/internal/users/{id}"} <= set(paths)
    assert set(paths["/api/auth/profile"]) == {"get", "patch"}
    register = paths["/api/auth/register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    validator = schema_validator(document, body)
    assert validator.is_valid({"email": "a@example.com", "password": "Secret123",
                               "firstName": "A", "lastName": "B"})
    assert not validator.is_valid({"email": "a@example.com", "password": "Secret123",
                                   "firstName": "A", "lastName": "B", "role": "admin"})
    assert paths["/internal/users/{id}"]["get"]["security"] == [{"serviceToken": []}]
    assert paths["/api/auth/profile"]["patch"]["security"] == [{"bearerAuth": []}]
