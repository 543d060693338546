"""Requests are checked against the schemas their endpoints declare: 400 VALIDATION_ERROR naming
each bad field, 400 MALFORMED_JSON, and 413 PAYLOAD_TOO_LARGE past the body limit."""

from __future__ import annotations

import pytest

LIMIT = 4096  # MAX_BODY_BYTES of demo_config


async def post_widget(client, **kwargs):
    resp = await client.post("/api/widgets", **kwargs)
    return resp.status, await resp.json()


async def test_a_valid_body_reaches_the_handler_and_camel_case_comes_back(client):
    status, body = await post_widget(client, json={"name": "Anvil", "unitPrice": 8999,
                                                   "tags": ["iron"]})
    assert status == 201
    assert body["name"] == "Anvil" and body["unitPrice"] == 8999 and body["tags"] == ["iron"]


@pytest.mark.parametrize(("sent", "fields"), [
    ({}, {"name", "unitPrice"}),
    ({"name": "Anvil"}, {"unitPrice"}),
    ({"name": "", "unitPrice": 1}, {"name"}),
    ({"name": "Anvil", "unitPrice": "cheap"}, {"unitPrice"}),
    ({"name": "Anvil", "unitPrice": -1}, {"unitPrice"}),
    ({"name": ["Anvil"], "unitPrice": 1.5}, {"name", "unitPrice"}),
    ({"name": "Anvil", "unitPrice": 1, "tags": "iron"}, {"tags"}),
    ({"name": "Anvil", "unitPrice": 1, "tags": ["ok", 7]}, {"tags.1"}),
    ({"name": "Anvil", "unitPrice": 1, "contact": {}}, {"contact.email"}),
    ({"name": "Anvil", "unitPrice": 1, "price": 1}, {"price"}),
])
async def test_each_bad_field_is_named_in_the_details(client, sent, fields):
    status, body = await post_widget(client, json=sent)
    assert status == 400
    assert (body["status"], body["error"]) == (400, "VALIDATION_ERROR")
    assert {d["field"] for d in body["details"]} == fields
    assert all(isinstance(d["message"], str) and d["message"] for d in body["details"])


@pytest.mark.parametrize("sent", [
    {"unitPrice": 8999.0}, {"unitPrice": 1e3}, {"featured": True}, {"featured": False},
    {"weight": 2}, {"weight": 2.5}, {"tags": []},
], ids=str)
async def test_a_body_is_accepted_exactly_as_the_schema_describes_it(client, sent):
    """JSON Schema's integer is any number with no fraction, 8999.0 included; a boolean is
    `true` or `false`; a number may be written as an integer."""
    status, body = await post_widget(client, json={"name": "Anvil", "unitPrice": 1, **sent})
    assert status == 201, body
    assert body["unitPrice"] == int(sent.get("unitPrice", 1))
    assert isinstance(body["unitPrice"], int)


@pytest.mark.parametrize("sent", [
    {"featured": 0}, {"featured": 1}, {"featured": "true"}, {"featured": "yes"},
    {"unitPrice": "8999"}, {"unitPrice": 8999.5}, {"unitPrice": True}, {"weight": "2.5"},
    {"name": 7},
], ids=str)
async def test_what_the_schema_does_not_describe_is_refused_not_guessed_at(client, sent):
    """`0` and `1` are not booleans, text is not a number, and snake_case is not the wire name:
    lax parsing used to take `"featured": 0` as false and `"unitPrice": "8999"` as a number."""
    status, body = await post_widget(client, json={"name": "Anvil", "unitPrice": 1, **sent})
    assert (status, body["error"]) == (400, "VALIDATION_ERROR")
    wrong = next(iter(sent))
    assert [d["field"] for d in body["details"]] == [wrong]


async def test_fields_go_by_their_wire_names_only(client):
    status, body = await post_widget(client, json={"name": "Anvil", "unit_price": 1})
    assert (status, body["error"]) == (400, "VALIDATION_ERROR")
    assert {d["field"] for d in body["details"]} == {"unitPrice", "unit_price"}
    listed = await client.get("/api/widgets", params={"page": "2"})
    assert listed.status == 200


async def test_the_openapi_document_says_integer_and_boolean(client):
    document = await (await client.get("/openapi.json")).json()
    fields = document["components"]["schemas"]["WidgetIn"]["properties"]
    assert fields["unitPrice"]["type"] == "integer"
    assert fields["featured"]["type"] == "boolean"
    assert {"type": "number"} in fields["weight"]["anyOf"]


@pytest.mark.parametrize("raw", [b"{", b"{'name': 'x'}", b'{"name": "x",}', b"\xff\xfe{}"])
async def test_a_body_that_is_not_json_is_malformed_json(client, raw):
    status, body = await post_widget(client, data=raw,
                                     headers={"Content-Type": "application/json"})
    assert (status, body["error"]) == (400, "MALFORMED_JSON")
    assert body["message"].startswith("The body is not valid JSON")


@pytest.mark.parametrize("raw", [b"", b"[]", b"42", b'"widget"', b"null"])
async def test_a_body_that_is_not_an_object_is_refused(client, raw):
    status, body = await post_widget(client, data=raw,
                                     headers={"Content-Type": "application/json"})
    assert (status, body["error"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == ["body"]


@pytest.mark.parametrize(("raw", "reason"), [(b"", None), (b"{}", None),
                                             (b'{"reason": "old"}', "old")])
async def test_a_body_with_nothing_required_may_be_left_out(client, raw, reason):
    resp = await client.post("/api/widgets/w1/archive", data=raw,
                             headers={"Content-Type": "application/json"} if raw else {})
    assert (resp.status, await resp.json()) == (200, {"archived": "w1", "reason": reason})


async def test_an_optional_body_still_refuses_what_is_not_an_object(client):
    resp = await client.post("/api/widgets/w1/archive", data=b"[]",
                             headers={"Content-Type": "application/json"})
    assert (resp.status, (await resp.json())["error"]) == (400, "VALIDATION_ERROR")


async def test_query_parameters_are_converted_to_their_declared_types(client):
    resp = await client.get("/api/widgets", params=[("page", "3"), ("limit", "50")])
    assert resp.status == 200
    body = await resp.json()
    assert (body["page"], body["limit"], body["tags"]) == (3, 50, [])


async def test_a_list_parameter_takes_one_or_many_values(client):
    one = await (await client.get("/api/widgets", params={"tag": "iron"})).json()
    many = await (await client.get("/api/widgets", params=[("tag", "iron"), ("tag", "tin")])).json()
    assert (one["tags"], many["tags"]) == (["iron"], ["iron", "tin"])


@pytest.mark.parametrize(("params", "fields"), [
    ({"page": "0"}, {"page"}),
    ({"limit": "101"}, {"limit"}),
    ({"limit": "ten", "page": "x"}, {"limit", "page"}),
    ({"sort": "price"}, {"sort"}),
    ([("q", "a"), ("q", "b")], {"q"}),
])
async def test_bad_query_parameters_are_named(client, params, fields):
    resp = await client.get("/api/widgets", params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert {d["field"] for d in body["details"]} == fields


async def test_a_body_declared_larger_than_the_limit_is_413(client):
    payload = b'{"name": "' + b"x" * LIMIT + b'", "unitPrice": 1}'
    status, body = await post_widget(client, data=payload,
                                     headers={"Content-Type": "application/json"})
    assert status == 413
    assert body == {"status": 413, "error": "PAYLOAD_TOO_LARGE",
                    "message": "The request body is too large", "details": {"maxBytes": LIMIT}}


async def test_a_chunked_body_without_length_is_cut_off_at_the_limit(client):
    async def chunks():
        yield b'{"name": "'
        for _ in range(LIMIT // 512 + 2):
            yield b"x" * 512
        yield b'", "unitPrice": 1}'

    resp = await client.post("/api/widgets", data=chunks(),
                             headers={"Content-Type": "application/json"})
    assert "Content-Length" not in resp.request_info.headers
    assert resp.status == 413
    assert (await resp.json())["error"] == "PAYLOAD_TOO_LARGE"


async def test_a_body_just_under_the_limit_is_read(client):
    name_room = LIMIT - len(b'{"name": "", "unitPrice": 1}')
    status, body = await post_widget(client, data=b'{"name": "' + b"x" * name_room
                                     + b'", "unitPrice": 1}',
                                     headers={"Content-Type": "application/json"})
    # Read and validated (the name is too long for the schema), not refused for its size.
    assert status == 400 and body["details"][0]["field"] == "name"
