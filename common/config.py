"""Typed, frozen service configuration, read once from environment variables and validated at start.

Every field maps to one environment variable: shared settings keep their bare name (`AMQP_URL`),
service settings carry the service's prefix (`AUTH_PORT`). `load_config` names each bad variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

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


class BaseConfig(BaseModel):
    """Settings every service shares. Subclasses set `service` and `env_prefix`, add their own."""

    # validate_default: defaults go through the same parsing as the environment (a CSV default
    # becomes a tuple, not a string whose characters would each pass as a token).
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              validate_default=True)

    service: ClassVar[str] = "service"
    env_prefix: ClassVar[str] = ""

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


def load_config(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
    """Build `cls` from `environ` (default: the process environment) or raise ConfigError.

    An empty variable counts as unset, so `LOGSTASH_HOST=` in a `.env` keeps the default.
    """
    environ = os.environ if environ is None else environ
    variables = {name: env_name(cls, name) for name in cls.model_fields}
    values = {name: environ[var] for name, var in variables.items() if environ.get(var, "") != ""}
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        # Pydantic locates an error by field name or alias; either way report the variable.
        by_key = {**variables, **{var: var for var in variables.values()}}
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = error["loc"]
            message = error["msg"].removeprefix("Value error, ")
            var = by_key.get(str(loc[0])) if loc else None
            problems.append(f"{var}: {message}" if var else message)
        raise ConfigError(f"invalid {cls.service} configuration: " + "; ".join(problems)) from None


def describe(cls: type[BaseConfig]) -> list[tuple[str, Any, str]]:
    """(variable, default, description) for every setting, for docs and `.env.example` checks."""
    return [(env_name(cls, name), field.default, field.description or "")
            for name, field in cls.model_fields.items()]
