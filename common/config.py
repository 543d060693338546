"""Typed, frozen service configuration, read once from the environment and validated at start. A
setting's variable is bare when shared (`AMQP_URL`), else prefixed (`AUTH_PORT`); the names of the
system tourbook replaces are read too, with a warning. `load_config` names each bad variable."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

PLACEHOLDER_MARK = "change-me"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]


def secret(default: str, *, alias: str | None = None, description: str = "") -> Any:
    """A field that must not keep a placeholder value in production, and is kept out of repr()."""
    return Field(default, alias=alias, description=description, repr=False,
                 json_schema_extra={"secret": True})


def is_placeholder(value: str) -> bool:
    return not value.strip() or PLACEHOLDER_MARK in value.lower()


class ConfigError(Exception):
    """The configuration cannot be used; the message names each bad variable."""


# -- names of the system tourbook replaces -------------------------------------------------------

Build = Callable[[Mapping[str, str], Any], str]
"""The value of a setting from the variables of an alias that are set, and the setting's default."""


@dataclass(frozen=True)
class Alias:
    """Variables of the system tourbook replaces, read as the setting `field` where a config has
    it. One variable is taken as it is; several make one value with `build`."""

    names: tuple[str, ...]
    field: str
    build: Build | None = None


@dataclass(frozen=True)
class Retired:
    """A variable of the system tourbook replaces that nothing here reads, and what does its job
    (`{port}` in it is the service's port variable)."""

    name: str
    instead: str


def database_url_from_parts(parts: Mapping[str, str], default: Any) -> str:
    """`DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASSWORD` over the default URL's parts."""
    url = urlsplit(str(default))
    user = parts.get("DB_USER", url.username or "")
    password = parts.get("DB_PASSWORD", url.password or "")
    host = parts.get("DB_HOST", url.hostname or "127.0.0.1")
    port = parts.get("DB_PORT", str(url.port or 5432))
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    address = f"[{host}]" if ":" in host else host
    netloc = f"{credentials}@{address}:{port}" if credentials else f"{address}:{port}"
    name = quote(parts.get("DB_NAME", url.path.lstrip("/")), safe="")
    return urlunsplit((url.scheme or "postgresql", netloc, f"/{name}", "", ""))


# The settings several services share, under the names the original read (in its code, its
# .env.example files or its compose file); each applies to the configs that have the field.
ORIGINAL_NAMES: tuple[Alias, ...] = (
    Alias(("RABBITMQ_URL",), "amqp_url"),
    Alias(("NODE_ENV",), "env"),
    Alias(("DATABASE_URL",), "database_url"),
    Alias(("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"), "database_url",
          database_url_from_parts),
    Alias(("AUTH_SERVICE_URL",), "auth_url"),
    Alias(("TOUR_CATALOG_SERVICE_URL",), "catalog_url"),
    Alias(("TOUR_SERVICE_URL",), "catalog_url"),
    Alias(("BOOKING_SERVICE_URL",), "booking_url"),
    Alias(("PAYMENT_SERVICE_URL",), "payments_url"),
)

_SIGNING = ("access tokens are signed by auth with an Ed25519 key (JWT_PRIVATE_KEY_FILE) and "
               "checked with its public key (JWT_PUBLIC_KEY_FILE or JWKS_URL)")
_RATE_LIMITS = "the gateway's limits are GATEWAY_RATE_LIMITS (/=100/900 is the original's)"
ORIGINAL_RETIRED: tuple[Retired, ...] = (
    Retired("JWT_SECRET", _SIGNING),
    Retired("JWT_ACCESS_SECRET", _SIGNING),
    Retired("JWT_REFRESH_SECRET", "refresh tokens are random strings stored hashed: no secret"),
    Retired("PORT", "each service has its own: {port}"),
    Retired("RABBITMQ_EXCHANGE", "the exchange is always tour_booking_events"),
    Retired("API_BASE_PATH", "paths are fixed (/api/tours, /api/bookings...)"),
    Retired("API_VERSION", "paths are fixed (/api/tours, /api/bookings...)"),
    Retired("DB_SYNC", "schemas come from migrations (./ops/dev migrate)"),
    Retired("RATE_LIMIT_WINDOW_MS", _RATE_LIMITS),
    Retired("RATE_LIMIT_MAX_REQUESTS", _RATE_LIMITS),
    Retired("RATE_LIMIT_MAX", _RATE_LIMITS),
)


class BaseConfig(BaseModel):
    """Settings every service shares. Subclasses set `service` and `env_prefix`, add their own."""

    # validate_default: defaults go through the same parsing as the environment (a CSV default
    # becomes a tuple, not a string whose characters would each pass as a token).
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              validate_default=True)

    service: ClassVar[str] = "service"
    env_prefix: ClassVar[str] = ""
    # Names of the original read as ours (a subclass adds its own), and those it no longer reads.
    aliases: ClassVar[tuple[Alias, ...]] = ORIGINAL_NAMES
    retired: ClassVar[tuple[Retired, ...]] = ORIGINAL_RETIRED

    env: Literal["development", "test", "production"] = Field("development", alias="APP_ENV")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field("auto", alias="LOG_FORMAT")
    logstash_host: str | None = Field(None, alias="LOGSTASH_HOST")
    logstash_port: int = Field(5000, alias="LOGSTASH_PORT", ge=1, le=65535)
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", alias="AMQP_URL")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    redis_prefix: str = Field("tourbook:", alias="REDIS_PREFIX")
    internal_tokens: CsvList = secret(
        f"dev-internal-token-{PLACEHOLDER_MARK}", alias="INTERNAL_TOKENS",
        description="Accepted service credentials for /internal calls; the first is sent.")
    jwt_public_key_file: str | None = Field(".keys/jwt-public.pem", alias="JWT_PUBLIC_KEY_FILE")
    jwks_url: str | None = Field(None, alias="JWKS_URL")
    jwks_min_refresh: float = Field(10.0, alias="JWKS_MIN_REFRESH", ge=0, le=3600, description=(
        "Seconds between two fetches of JWKS_URL at most (a token with an unknown key id asks "
        "for one): how soon a new signing key is trusted, and a bound on the load forged key "
        "ids can put on auth"))
    jwt_issuer: str = Field("tourbook-auth", alias="JWT_ISSUER")
    jwt_audience: str = Field("tourbook", alias="JWT_AUDIENCE")
    max_body_bytes: int = Field(1024 * 1024, alias="MAX_BODY_BYTES", ge=1024)
    shutdown_timeout: float = Field(15.0, alias="SHUTDOWN_TIMEOUT", gt=0)
    drain_delay: float = Field(
        0.0, alias="SHUTDOWN_DRAIN_DELAY", ge=0,
        description="Seconds between SIGTERM and closing the listener, with readiness at 503")

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Self:
        if self.env != "production":
            return self
        bad = []
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            if not (isinstance(extra, dict) and extra.get("secret")):
                continue
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            if not values or any(is_placeholder(v) for v in values):
                bad.append(env_name(type(self), name))
        if bad:
            raise ValueError(f"{', '.join(bad)}: a placeholder secret is refused in production")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"


def env_name(cls: type[BaseConfig], field_name: str) -> str:
    field = cls.model_fields[field_name]
    return field.alias or f"{cls.env_prefix}{field_name.upper()}"


C = TypeVar("C", bound=BaseConfig)


@dataclass(frozen=True)
class Notice:
    """A warning about the environment a config was read from, logged once at start."""

    event: str
    fields: dict[str, str]


@dataclass
class _Reading:
    values: dict[str, str] = dataclasses.field(default_factory=dict)
    """field name → raw value"""
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    """field name → the variable(s) its value came from"""
    notices: list[Notice] = dataclasses.field(default_factory=list)


def _is_set(value: str | None) -> bool:
    # An empty variable counts as unset, so `LOGSTASH_HOST=` in a `.env` keeps the default.
    return value is not None and value != ""


def _read(cls: type[BaseConfig], environ: Mapping[str, str]) -> _Reading:
    reading = _Reading()
    variables = {name: env_name(cls, name) for name in cls.model_fields}
    for name, var in variables.items():
        if _is_set(environ.get(var)):
            reading.values[name] = environ[var]
            reading.sources[name] = var
    aliased = set()
    for alias in cls.aliases:
        present = [n for n in alias.names if _is_set(environ.get(n))]
        if alias.field not in cls.model_fields or not present:
            continue
        aliased.update(present)
        ours, said = variables[alias.field], ", ".join(present)
        if alias.field in reading.sources:
            reading.notices.append(Notice("config_alias_ignored", {
                "variable": said, "use": ours,
                "reason": f"{reading.sources[alias.field]} is set and wins"}))
            continue
        given = {n: environ[n] for n in present}
        try:
            reading.values[alias.field] = (
                alias.build(given, cls.model_fields[alias.field].default) if alias.build
                else given[present[0]])
        except ValueError as exc:
            raise ConfigError(f"invalid {cls.service} configuration: {said} (read as {ours}): "
                              f"{exc}") from None
        reading.sources[alias.field] = said
        reading.notices.append(Notice("config_alias_used", {"variable": said, "use": ours}))
    for retired in cls.retired:
        if retired.name not in aliased and _is_set(environ.get(retired.name)):
            reading.notices.append(Notice("config_variable_not_read", {
                "variable": retired.name,
                "instead": retired.instead.format(port=variables["port"])}))
    reading.notices += _lookalikes(cls, environ, set(variables.values()))
    return reading


# What Kubernetes sets for each Service of the namespace (`<NAME>_SERVICE_HOST`,
# `<NAME>_PORT_8080_TCP_ADDR`...): a Service named "gateway" must not read as a typo of ours.
_SERVICE_LINK = re.compile(r"^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|"
                           r"PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$")


def _lookalikes(cls: type[BaseConfig], environ: Mapping[str, str], ours: set[str]) -> list[Notice]:
    """Variables that look like ours but are not: any of the service's prefix, and near misses
    of its other names. Another service's variables (`AUTH_PORT` in the gateway's environment)
    are neither, and `<PREFIX>URL` is where the other services reach this one."""
    known = ours | {n for alias in cls.aliases for n in alias.names}
    known |= {retired.name for retired in cls.retired}
    known.add(f"{cls.env_prefix}URL")
    found = []
    for name in sorted(environ):
        if name in known or not _is_set(environ[name]) or _SERVICE_LINK.match(name):
            continue
        if cls.env_prefix and name.startswith(cls.env_prefix):
            closest = difflib.get_close_matches(name, ours, n=1, cutoff=0)[0]
        else:
            near = sorted((_distance(name, var), var) for var in ours)
            if not near or near[0][0] > (1 if len(name) < 10 else 2):
                continue
            closest = near[0][1]
        found.append(Notice("config_variable_unknown", {"variable": name, "closest": closest}))
    return found


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`."""
    rows = [list(range(len(b) + 1))]
    for i, char in enumerate(a, 1):
        row = [i]
        for j, other in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (char != other)))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def config_notices(cls: type[BaseConfig], environ: Mapping[str, str] | None = None
                   ) -> list[Notice]:
    """What `load_config` warns about: names of the original read as ours (or not at all),
    and variables that look like ours but are not."""
    return _read(cls, os.environ if environ is None else environ).notices


def load_config(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
    """Build `cls` from `environ` (default: the process environment) or raise ConfigError.

    From the process environment, each `config_notices` warning is logged once, as soon as
    logging is configured (its own settings are among those read here).
    """
    from_process = environ is None
    reading = _read(cls, os.environ if environ is None else environ)
    try:
        config = cls.model_validate(reading.values)
    except ValidationError as exc:
        # Pydantic locates an error by field name or alias; either way report the variable set.
        by_key = {**{env_name(cls, name): name for name in cls.model_fields},
                  **{name: name for name in cls.model_fields}}
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = error["loc"]
            message = error["msg"].removeprefix("Value error, ")
            name = by_key.get(str(loc[0])) if loc else None
            problems.append(f"{_said(cls, name, reading)}: {message}" if name else message)
        raise ConfigError(f"invalid {cls.service} configuration: " + "; ".join(problems)) from None
    if from_process and reading.notices:
        # Imported here: structlog's import would slow every process start (the ops CLI, tools)
        # for warnings most starts do not have.
        from common.logging import log_at_start  # noqa: PLC0415

        for notice in reading.notices:
            log_at_start("config", "warning", notice.event, **notice.fields)
    return config


def _said(cls: type[BaseConfig], name: str, reading: _Reading) -> str:
    ours = env_name(cls, name)
    source = reading.sources.get(name, ours)
    return ours if source == ours else f"{source} (read as {ours})"


def describe(cls: type[BaseConfig]) -> list[tuple[str, Any, str]]:
    """(variable, default, description) for every setting, for docs and `.env.example` checks."""
    return [(env_name(cls, name), field.default, field.description or "")
            for name, field in cls.model_fields.items()]
