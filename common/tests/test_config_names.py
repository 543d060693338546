"""Names of the system tourbook replaces, read as ours with a warning at start; our own names
misspelt are warned about too, naming the closest one that exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from common.config import ConfigError, config_notices, load_config
from common.testing import free_port, wait_http_ready
from common.tests.support import ROOT
from gateway.config import Config as GatewayConfig
from notify.config import Config as NotifyConfig
from realtime.config import Config as RealtimeConfig


def notices(cls, env):  # type: ignore[no-untyped-def]
    return [(n.event, n.fields) for n in config_notices(cls, env)]


# --- aliases --------------------------------------------------------------------------------

def test_a_name_of_the_original_is_read_as_ours_with_one_warning_naming_ours():
    env = {"RABBITMQ_URL": "amqp://guest:guest@broker.example:5672/tours"}

    config = load_config(NotifyConfig, env)

    assert config.amqp_url == "amqp://guest:guest@broker.example:5672/tours"
    assert notices(NotifyConfig, env) == [
        ("config_alias_used", {"variable": "RABBITMQ_URL", "use": "AMQP_URL"})]


def test_ours_wins_when_both_are_set_and_the_warning_says_so():
    env = {"RABBITMQ_URL": "amqp://guest:guest@elsewhere:5672/", "AMQP_URL": "amqp://here:5672/"}

    assert load_config(NotifyConfig, env).amqp_url == "amqp://here:5672/"
    assert notices(NotifyConfig, env) == [("config_alias_ignored", {
        "variable": "RABBITMQ_URL", "use": "AMQP_URL", "reason": "AMQP_URL is set and wins"})]


def test_an_empty_name_of_the_original_counts_as_unset():
    assert notices(NotifyConfig, {"RABBITMQ_URL": ""}) == []


@pytest.mark.parametrize(("cls", "field", "variable"), [
    (GatewayConfig, "cors_origins", "GATEWAY_CORS_ORIGINS"),
    (RealtimeConfig, "allowed_origins", "REALTIME_ALLOWED_ORIGINS"),
])
def test_allowed_origins_sets_the_gateway_s_cors_and_realtime_s_websocket_origins(
        cls, field, variable):
    env = {"ALLOWED_ORIGINS": "https://tours.example, https://admin.tours.example"}

    config = load_config(cls, env)

    assert getattr(config, field) == ("https://tours.example", "https://admin.tours.example")
    assert notices(cls, env) == [
        ("config_alias_used", {"variable": "ALLOWED_ORIGINS", "use": variable})]


def test_the_gateway_s_own_original_name_comes_before_the_shared_one():
    env = {"CORS_ORIGIN": "https://a.example", "ALLOWED_ORIGINS": "https://b.example"}

    assert load_config(GatewayConfig, env).cors_origins == ("https://a.example",)
    assert notices(GatewayConfig, env) == [
        ("config_alias_used", {"variable": "CORS_ORIGIN", "use": "GATEWAY_CORS_ORIGINS"}),
        ("config_alias_ignored", {"variable": "ALLOWED_ORIGINS", "use": "GATEWAY_CORS_ORIGINS",
                                  "reason": "CORS_ORIGIN is set and wins"})]


def test_smtp_credentials_and_sender_of_the_original():
    env = {"SMTP_USER": "mailer", "SMTP_PASS": "s3cret-pass",
           "SMTP_FROM_EMAIL": "noreply@tourisme.example", "SMTP_FROM_NAME": "Tourisme App"}

    config = load_config(NotifyConfig, env)

    assert config.smtp_credentials == ("mailer", "s3cret-pass")
    assert config.mail_from == "Tourisme App <noreply@tourisme.example>"
    assert notices(NotifyConfig, env) == [
        ("config_alias_used", {"variable": "SMTP_USER", "use": "SMTP_USERNAME"}),
        ("config_alias_used", {"variable": "SMTP_PASS", "use": "SMTP_PASSWORD"}),
        ("config_alias_used", {"variable": "SMTP_FROM_EMAIL, SMTP_FROM_NAME",
                               "use": "NOTIFY_MAIL_FROM"})]


@pytest.mark.parametrize(("env", "mail_from"), [
    ({"SMTP_FROM_EMAIL": "noreply@tourisme.example"}, "tourbook <noreply@tourisme.example>"),
    ({"SMTP_FROM_NAME": "Tourisme, App"}, '"Tourisme, App" <noreply@tourbook.example>'),
    ({"SENDER_EMAIL": "hello@tours.example", "SENDER_NAME": "Tours"},
     "Tours <hello@tours.example>"),
])
def test_half_a_sender_keeps_the_other_half_of_ours(env, mail_from):
    assert load_config(NotifyConfig, env).mail_from == mail_from


def test_the_database_parts_of_the_original_make_the_service_s_url():
    env = {"DB_HOST": "db.internal", "DB_NAME": "xp_travel_auth", "DB_USER": "app",
           "DB_PASSWORD": "p@ss/word"}

    config = load_config(NotifyConfig, env)

    assert config.database_url == "postgresql://app:p%40ss%2Fword@db.internal:5432/xp_travel_auth"
    assert notices(NotifyConfig, env) == [("config_alias_used", {
        "variable": "DB_HOST, DB_NAME, DB_USER, DB_PASSWORD", "use": "NOTIFY_DATABASE_URL"})]


def test_database_url_comes_before_the_parts():
    env = {"DATABASE_URL": "postgres://postgres:postgres@postgres-auth:5432/auth_service_db",
           "DB_HOST": "localhost"}

    assert load_config(NotifyConfig, env).database_url == env["DATABASE_URL"]
    assert [event for event, _ in notices(NotifyConfig, env)] == [
        "config_alias_used", "config_alias_ignored"]


def test_the_original_s_service_urls_find_our_upstreams():
    env = {"AUTH_SERVICE_URL": "http://auth-service:3005",
           "TOUR_SERVICE_URL": "http://tour-catalog-service:3001",
           "BOOKING_SERVICE_URL": "http://booking-management-service:3002",
           "PAYMENT_SERVICE_URL": "http://payment-service:3004"}

    config = load_config(GatewayConfig, env)

    assert (config.auth_url, config.catalog_url, config.booking_url, config.payments_url) == (
        "http://auth-service:3005", "http://tour-catalog-service:3001",
        "http://booking-management-service:3002", "http://payment-service:3004")
    assert {fields["use"] for _, fields in notices(GatewayConfig, env)} == {
        "AUTH_URL", "CATALOG_URL", "BOOKING_URL", "PAYMENTS_URL"}


def test_node_env_is_app_env_and_a_bad_value_names_the_variable_that_was_set():
    assert load_config(NotifyConfig, {"NODE_ENV": "test"}).env == "test"
    with pytest.raises(ConfigError, match=r"NODE_ENV \(read as APP_ENV\): Input should be"):
        load_config(NotifyConfig, {"NODE_ENV": "staging"})


def test_a_name_a_service_does_not_read_is_not_its_business():
    # booking's DB_* parts mean nothing to the gateway (no database), nor SMTP_USER.
    env = {"DB_HOST": "db.internal", "SMTP_USER": "mailer"}
    assert notices(GatewayConfig, env) == []
    assert load_config(GatewayConfig, env) == load_config(GatewayConfig, {})


def test_variables_of_the_original_without_a_counterpart_say_what_replaced_them():
    env = {"JWT_SECRET": "x" * 32, "PORT": "3006", "RABBITMQ_QUEUE": "notification_queue"}

    events = [event for event, _ in notices(NotifyConfig, env)]

    assert events == ["config_variable_not_read"] * 3
    found = {fields["variable"]: fields["instead"] for _, fields in notices(NotifyConfig, env)}
    assert "JWT_PUBLIC_KEY_FILE" in found["JWT_SECRET"]
    assert "NOTIFY_PORT" in found["PORT"]
    assert "notification_queue" in found["RABBITMQ_QUEUE"]


# --- names that look like ours --------------------------------------------------------------

@pytest.mark.parametrize(("cls", "variable", "closest"), [
    (GatewayConfig, "GATEWAY_CORS_ORIGIN", "GATEWAY_CORS_ORIGINS"),
    (GatewayConfig, "GATEWAY_RATELIMITS", "GATEWAY_RATE_LIMITS"),
    (NotifyConfig, "NOTIFY_SMS_PROVIDOR", "NOTIFY_SMS_PROVIDER"),
    (NotifyConfig, "AMQP_ULR", "AMQP_URL"),
    (NotifyConfig, "INTERNAL_TOKEN", "INTERNAL_TOKENS"),
    (NotifyConfig, "SMTP_HOTS", "SMTP_HOST"),
    (RealtimeConfig, "LOG_LEVLE", "LOG_LEVEL"),
    (RealtimeConfig, "REDIS_URI", "REDIS_URL"),
])
def test_a_misspelt_variable_names_the_closest_known_one(cls, variable, closest):
    assert notices(cls, {variable: "1"}) == [
        ("config_variable_unknown", {"variable": variable, "closest": closest})]


@pytest.mark.parametrize("variable", [
    "AUTH_PORT", "REALTIME_PORT", "NOTIFY_SMS_FROM", "BOOKING_HOLD_TTL",  # other services'
    "GATEWAY_URL", "NOTIFY_URL",  # where the others reach a service
    "STRIPE_STANDIN_PORT", "SMTP_STANDIN_SMTP_PORT", "TEST_POSTGRES_URL", "PATH", "HOME",
    # Kubernetes' links to a Service named "gateway" or "notify"
    "GATEWAY_SERVICE_HOST", "GATEWAY_SERVICE_PORT_HTTP", "NOTIFY_PORT_3006_TCP_ADDR",
])
def test_variables_of_other_services_and_of_the_platform_are_not_typos(variable):
    for cls in (GatewayConfig, NotifyConfig, RealtimeConfig):
        assert notices(cls, {variable: "1"}) == [], cls.service


# --- at start -------------------------------------------------------------------------------

def test_a_service_started_with_original_names_warns_once_each_in_its_log_lines(
        redis_url, key_files):
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GATEWAY_", "AMQP_", "LOG_"))}
    env |= {"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "REDIS_URL": redis_url,
            "GATEWAY_PORT": str(port), "JWT_PUBLIC_KEY_FILE": str(key_files[1]),
            "ALLOWED_ORIGINS": "https://tours.example",
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/", "GATEWAY_CORS_ORIGIN": "x"}
    process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http_ready(f"http://127.0.0.1:{port}/health/live", process)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    warned = [(line["event"], line.get("variable"), line.get("use") or line.get("closest"))
              for line in lines if line["event"].startswith("config_")]

    assert sorted(warned) == [
        ("config_alias_used", "ALLOWED_ORIGINS", "GATEWAY_CORS_ORIGINS"),
        ("config_alias_used", "RABBITMQ_URL", "AMQP_URL"),
        ("config_variable_unknown", "GATEWAY_CORS_ORIGIN", "GATEWAY_CORS_ORIGINS")]
    assert all(line["level"] == "warning" and line["service"] == "gateway"
               for line in lines if line["event"].startswith("config_"))
    started = next(i for i, line in enumerate(lines) if line["event"] == "service_started")
    assert all(i < started for i, line in enumerate(lines) if line["event"].startswith("config_"))
