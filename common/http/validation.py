"""Request validation from declared pydantic schemas; the same declarations feed `/openapi.json`.

    @endpoint(summary="Log in", body=LoginIn, response=AuthOut, errors=(401,))
    async def login(request, body: LoginIn) -> web.Response: ...
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from common import auth
from common.errors import BadRequest, ValidationFailed
from common.http.bodies import content_coding

Access = Literal["public", "user", "manager", "admin", "service"]


class Schema(BaseModel):
    """Wire models: camelCase on the wire, snake_case in Python, unknown fields refused. A body
    is validated strictly against what the OpenAPI document says of it (`parse_body`); query
    parameters, which are text, are converted to their declared types. A `mode="before"`
    validator hands strict validation a Python value: it returns the type itself (a `date`, not
    its text), as a JSON string is only read as a date, an id or an enumeration straight from
    the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class MalformedJson(BadRequest):
    code = "MALFORMED_JSON"


@dataclass(frozen=True)
class Operation:
    """What `/openapi.json` says about one handler."""

    summary: str
    access: Access
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    tags: tuple[str, ...] = field(default=())
    description: str = ""


def validation_details(exc: pydantic.ValidationError, where: str = "body") -> list[dict[str, str]]:
    """`[{"field": "contact.email", "message": ...}]`; an error about the whole input (a model
    validator) names `where` as its field."""
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        details.append({"field": path or where,
                        "message": error["msg"].removeprefix("Value error, ")})
    return details


def body_optional(model: type[BaseModel]) -> bool:
    """A body whose fields all have defaults may be left out: `POST /cancel` with nothing to say."""
    return not any(field.is_required() for field in model.model_fields.values())


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    content_coding(request)  # a coding aiohttp left undecoded would reach json.loads as noise
    raw = await request.read()
    if not raw and not body_optional(model):
        raise ValidationFailed("A JSON body is required", details=[
            {"field": "body", "message": "A JSON body is required"}])
    try:
        data = json.loads(raw, parse_float=_json_number) if raw else {}
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise MalformedJson(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedJson("The body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object", details=[
            {"field": "body", "message": "Input should be an object"}])
    _refuse_nul(data, "body")
    try:
        # Strict, in JSON mode: what JSON Schema calls a boolean, an integer, a string, and
        # nothing else (lax mode took `0` for false and "8999" for a number); dates, ids and
        # enumerations are still read from their strings. Wire names only, as documented.
        return model.model_validate_json(json.dumps(data), strict=True, by_name=False)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from None


def _json_number(text: str) -> int | float:
    """A JSON number with a fraction or an exponent: an integer when its value is one, as JSON
    Schema counts `202.0` (which strict validation would refuse where an integer is due)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """A repeated parameter, or any parameter of a list field, is a list; others are strings
    that pydantic converts (lax mode) to the declared types."""
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if key in lists or len(values) > 1 else values[0]
    _refuse_nul(data, "query")
    try:
        return model.model_validate(data, by_name=False)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc, where="query")) from None


def _refuse_nul(data: dict[str, Any], where: str) -> None:
    """PostgreSQL cannot store U+0000 in text, and no field of this API needs it: a string that
    holds it is a 400 here rather than a 500 from the database later."""
    found: list[str] = []
    todo: list[tuple[str, Any]] = [("", data)]
    while todo:  # a loop, not recursion: the nesting depth is the client's to choose
        path, value = todo.pop()
        if isinstance(value, str) and "\x00" in value:
            found.append(path or where)
        elif isinstance(value, list):
            todo.extend((_join(path, i), item) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                todo.extend([(path, key), (_join(path, key), item)])
    if found:
        raise ValidationFailed(details=[
            {"field": field, "message": "must not contain the NUL character (U+0000)"}
            for field in sorted(set(found))])


def _join(path: str, part: object) -> str:
    return f"{path}.{part}" if path else str(part)


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    names = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        kinds = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
        if any(typing.get_origin(kind) in (list, tuple, set, frozenset) for kind in kinds):
            names |= {name, info.alias or name}
    return frozenset(names)


def _is_union(annotation: object) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


async def authorize(request: web.Request, access: Access) -> auth.Identity | None:
    if access == "public":
        return None
    if access == "service":
        auth.check_service_credential(request)
        return None
    identity = await auth.authenticate(request)
    if access == "admin":
        auth.require_admin(identity)
    elif access == "manager":
        auth.require_manager(identity)
    return identity


Handler = Callable[..., Awaitable[web.StreamResponse]]


def endpoint(*, summary: str, access: Access = "public", body: type[BaseModel] | None = None,
             query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
             status: int = 200, errors: Sequence[int] = (), tags: Sequence[str] = (),
             description: str = "") -> Callable[[Handler], Handler]:
    """Checks access, then validates query and body, and calls the handler with
    `identity=`, `query=` and `body=` keyword arguments for what was declared."""
    operation = Operation(summary, access, body, query, response, status, tuple(errors),
                          tuple(tags), description)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {}
            identity = await authorize(request, access)
            if access in ("user", "manager", "admin"):
                kwargs["identity"] = identity
            if query is not None:
                kwargs["query"] = parse_query(request, query)
            if body is not None:
                kwargs["body"] = await parse_body(request, body)
            return await handler(request, **kwargs)

        wrapper.__openapi__ = operation  # type: ignore[attr-defined]
        return wrapper

    return decorate


def json_response(payload: BaseModel | dict[str, Any] | list[Any], *, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response; models are dumped with their camelCase aliases."""
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(by_alias=True)
    else:
        text = json.dumps(payload, default=str)
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)
