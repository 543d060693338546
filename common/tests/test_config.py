"""Service configuration: typed and frozen, read from the environment, refused at start-up with a
message naming the bad variable, and strict about placeholder secrets in production."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import ClassVar, Literal

import pydantic
import pytest
from pydantic import Field

from auth.config import Config as AuthConfig
from common.config import BaseConfig, ConfigError, CsvList, describe, load_config, secret
from common.tests.support import ROOT


class ShopConfig(BaseConfig):
    service: ClassVar[str] = "shop"
    env_prefix: ClassVar[str] = "SHOP_"

    api_key: str = secret("shop-key-change-me")
    partner_url: str
    retries: int = Field(3, ge=0, le=10)
    ratio: float = 0.5
    sandbox: bool = False
    mode: Literal["fast", "safe"] = "safe"
    regions: CsvList = ("eu",)


REQUIRED = {"SHOP_PARTNER_URL": "http://partner.test"}
REAL_TOKEN = "b6X3kP0cVq7s9Zr1mN4wYt2uHj8aLe5d"


def test_each_setting_is_read_from_its_variable_and_typed():
    config = load_config(ShopConfig, {
        **REQUIRED, "SHOP_RETRIES": "7", "SHOP_RATIO": "0.25", "SHOP_SANDBOX": "true",
        "SHOP_MODE": "fast", "SHOP_REGIONS": "eu,us", "LOGSTASH_PORT": "5044",
        "LOG_LEVEL": "DEBUG", "SHOP_PORT": "8081", "SHOP_HOST": "10.0.0.5"})
    assert (config.retries, config.ratio, config.sandbox, config.mode) == (7, 0.25, True, "fast")
    assert config.regions == ("eu", "us")
    assert (config.logstash_port, config.log_level) == (5044, "DEBUG")
    assert (config.host, config.port) == ("10.0.0.5", 8081)


def test_unset_and_empty_variables_keep_the_defaults():
    config = load_config(ShopConfig, {**REQUIRED, "SHOP_RETRIES": "", "LOGSTASH_HOST": ""})
    assert config.retries == 3 and config.logstash_host is None
    assert config.env == "development" and config.max_body_bytes == 1024 * 1024
    assert config.shutdown_timeout == 15 and config.drain_delay == 0


@pytest.mark.parametrize(("variable", "value"), [
    ("SHOP_RETRIES", "three"),
    ("SHOP_RETRIES", "11"),
    ("SHOP_RATIO", "half"),
    ("SHOP_SANDBOX", "perhaps"),
    ("SHOP_MODE", "reckless"),
    ("APP_ENV", "staging"),
    ("LOG_LEVEL", "LOUD"),
    ("LOGSTASH_PORT", "70000"),
    ("MAX_BODY_BYTES", "12"),
])
def test_a_bad_value_is_refused_naming_its_variable(variable, value):
    with pytest.raises(ConfigError) as refused:
        load_config(ShopConfig, {**REQUIRED, variable: value})
    message = str(refused.value)
    assert message.startswith("invalid shop configuration: ")
    assert f"{variable}: " in message
    assert value not in message.removeprefix("invalid shop configuration: ").split(": ", 1)[1]


def test_a_missing_required_variable_is_named():
    with pytest.raises(ConfigError, match="SHOP_PARTNER_URL: Field required"):
        load_config(ShopConfig, {})


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigError) as refused:
        load_config(ShopConfig, {"SHOP_RETRIES": "x", "APP_ENV": "nope"})
    assert all(v in str(refused.value) for v in ("SHOP_RETRIES", "APP_ENV", "SHOP_PARTNER_URL"))


def test_csv_lists_split_on_commas_and_drop_blanks():
    config = load_config(ShopConfig, {**REQUIRED, "SHOP_REGIONS": " eu , ,us,, asia "})
    assert config.regions == ("eu", "us", "asia")


def test_config_is_frozen():
    config = load_config(ShopConfig, REQUIRED)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.retries = 9  # type: ignore[misc]
    assert isinstance(config.regions, tuple)  # no list to mutate behind its back either


@pytest.mark.parametrize("tokens", [
    None,  # the development default
    "svc-change-me",
    f"{REAL_TOKEN},old-token-CHANGE-ME",
    " , ",
])
def test_production_refuses_placeholder_internal_tokens(tokens):
    env = {"APP_ENV": "production", "SHOP_API_KEY": REAL_TOKEN, **REQUIRED}
    if tokens is not None:
        env["INTERNAL_TOKENS"] = tokens
    with pytest.raises(ConfigError, match="INTERNAL_TOKENS: a placeholder secret is refused"):
        load_config(ShopConfig, env)


def test_production_names_every_placeholder_secret():
    with pytest.raises(ConfigError, match="INTERNAL_TOKENS, SHOP_API_KEY: a placeholder"):
        load_config(ShopConfig, {"APP_ENV": "production", **REQUIRED})


def test_production_accepts_real_secrets():
    config = load_config(ShopConfig, {
        "APP_ENV": "production", "INTERNAL_TOKENS": f"{REAL_TOKEN},{REAL_TOKEN[::-1]}",
        "SHOP_API_KEY": REAL_TOKEN, **REQUIRED})
    assert config.production and config.internal_tokens == (REAL_TOKEN, REAL_TOKEN[::-1])


def test_defaults_are_parsed_like_the_environment():
    # A CSV default is a tuple of tokens, not a string whose characters would each be a "token".
    assert load_config(ShopConfig, REQUIRED).internal_tokens == ("dev-internal-token-change-me",)


def test_secrets_are_kept_out_of_repr():
    config = load_config(ShopConfig, {**REQUIRED, "INTERNAL_TOKENS": REAL_TOKEN})
    assert REAL_TOKEN not in repr(config) and REAL_TOKEN not in str(config)


def test_describe_lists_every_variable_with_its_default():
    described = {var: default for var, default, _ in describe(ShopConfig)}
    assert described["SHOP_RETRIES"] == 3 and described["SHOP_MODE"] == "safe"
    assert described["APP_ENV"] == "development" and described["SHUTDOWN_DRAIN_DELAY"] == 0
    assert {"SHOP_PORT", "SHOP_HOST", "INTERNAL_TOKENS", "LOGSTASH_HOST"} <= described.keys()


def test_a_service_validator_names_its_variable():
    with pytest.raises(ConfigError, match="AUTH_BCRYPT_ROUNDS must be at least 12"):
        load_config(AuthConfig, {"APP_ENV": "production", "INTERNAL_TOKENS": REAL_TOKEN,
                                 "AUTH_BCRYPT_ROUNDS": "10"})


def run_auth(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AUTH_", "APP_ENV", "INTERNAL_TOKENS"))}
    return subprocess.run([sys.executable, "-m", "auth"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_service_with_a_bad_variable_exits_2_naming_it():
    result = run_auth(AUTH_PORT="not-a-port")
    assert result.returncode == 2
    assert result.stderr.startswith("auth: invalid auth configuration: AUTH_PORT: ")
    assert "Traceback" not in result.stderr


def test_service_in_production_with_a_placeholder_secret_exits_2():
    result = run_auth(APP_ENV="production")
    assert result.returncode == 2
    assert "INTERNAL_TOKENS: a placeholder secret is refused in production" in result.stderr
