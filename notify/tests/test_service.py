"""The service around the messages: its health, its settings (what production refuses), and
SMTP as real servers speak it: AUTH, STARTTLS and implicit TLS against aiosmtpd with a
certificate made for the test."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.config import ConfigError, load_config
from common.testing import eventually
from notify.config import Config
from notify.failures import SendFailed
from notify.mail import Mailer
from notify.rendering import Email
from notify.tests.conftest import MakeScene, Scene, booking_event
from standins.smtp import SmtpSink

# --- health ----------------------------------------------------------------------------------

async def test_health_reports_every_dependency(scene: Scene) -> None:
    resp = await scene.notify.get("/health")

    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["service"] == "notify"
    assert set(body["checks"]) == {"database", "broker", "consumer:notification_queue",
                                   "redis", "smtp", "auth", "booking", "revocations"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert [n for n, c in body["checks"].items() if c["critical"]] == ["database"]


async def test_an_smtp_server_down_degrades_health_but_not_readiness(scene: Scene) -> None:
    await scene.sink.stop()

    health = await scene.notify.get("/health")
    ready = await scene.notify.get("/health/ready")

    assert health.status == 503
    assert (await health.json())["checks"]["smtp"]["status"] == "error"
    assert ready.status == 200


async def test_the_openapi_document_describes_the_log(scene: Scene) -> None:
    resp = await scene.notify.get("/openapi.json")

    assert resp.status == 200
    paths = (await resp.json())["paths"]
    assert set(paths) == {"/api/notifications", "/api/notifications/{id}"}
    names = {p["name"] for p in paths["/api/notifications"]["get"]["parameters"]}
    assert {"page", "limit", "userId", "bookingId", "eventType", "channel", "status",
            "recipient"} <= names


async def test_deliveries_are_counted_in_metrics(scene: Scene) -> None:
    pat = scene.traveller("Pat")
    await scene.publish(booking_event("booking.completed", pat))
    await scene.mail_to(pat["user"]["email"])

    async def scraped() -> str | None:
        text = await (await scene.notify.get("/metrics")).text()
        wanted = 'notify_deliveries_total{channel="email",status="sent",' \
                 'template="booking_completed"}'
        return text if wanted in text else None

    text = await eventually(scraped, message="the delivery counted")
    assert 'notify_send_seconds_count{channel="email"}' in text
    assert "events_consumed_total" in text


# --- settings ----------------------------------------------------------------------------------

def config(**env: str) -> Config:
    return load_config(Config, env)


def test_defaults_send_to_the_local_sink_and_log_sms() -> None:
    defaults = config()

    assert (defaults.port, defaults.smtp_host, defaults.smtp_port) == (3006, "127.0.0.1", 1025)
    assert (defaults.smtp_security, defaults.sms_provider) == ("none", "log")
    assert defaults.mail_from == "tourbook <noreply@tourbook.example>"
    assert defaults.operator_email == "ops@tourbook.example"
    assert defaults.database_url.endswith("/notification_service_db")


def test_secrets_stay_out_of_repr() -> None:
    settings = config(SMTP_USERNAME="mailer", SMTP_PASSWORD="s3cret-pass",
                      NOTIFY_SMS_PROVIDER="http", NOTIFY_SMS_ACCOUNT_SID="AC1",
                      NOTIFY_SMS_AUTH_TOKEN="t0ken-value", NOTIFY_SMS_FROM="+15005550006")

    assert "s3cret-pass" not in repr(settings) and "t0ken-value" not in repr(settings)
    assert settings.sms_url == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"


@pytest.mark.parametrize(("env", "message"), [
    ({"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"),
    ({"SMTP_USERNAME": "mailer"}, "SMTP_USERNAME and SMTP_PASSWORD go together"),
    ({"NOTIFY_SMS_PROVIDER": "http"}, "NOTIFY_SMS_ACCOUNT_SID, NOTIFY_SMS_AUTH_TOKEN, "
                                      "NOTIFY_SMS_FROM"),
    ({"NOTIFY_OPERATOR_EMAIL": "ops"}, "NOTIFY_OPERATOR_EMAIL"),
    ({"NOTIFY_MAIL_FROM": "tourbook <nobody>"}, "NOTIFY_MAIL_FROM"),
    ({"NOTIFY_PUBLIC_URL": "tourbook.example"}, "NOTIFY_PUBLIC_URL"),
])
def test_unusable_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**env)


PRODUCTION = {"APP_ENV": "production", "INTERNAL_TOKENS": "a-real-service-token",
              "NOTIFY_SMS_PROVIDER": "off"}


@pytest.mark.parametrize(("env", "message"), [
    ({"NOTIFY_SMS_PROVIDER": "log"}, "NOTIFY_SMS_PROVIDER=log only logs SMS"),
    ({"NOTIFY_SMS_PROVIDER": "http", "NOTIFY_SMS_ACCOUNT_SID": "AC1",
      "NOTIFY_SMS_AUTH_TOKEN": "change-me", "NOTIFY_SMS_FROM": "+15005550006"},
     "NOTIFY_SMS_AUTH_TOKEN: a placeholder"),
    ({"SMTP_HOST": "smtp.example.com", "SMTP_SECURITY": "starttls", "SMTP_USERNAME": "m",
      "SMTP_PASSWORD": "change-me"}, "SMTP_PASSWORD: a placeholder"),
    ({"SMTP_HOST": "smtp.example.com", "SMTP_USERNAME": "m", "SMTP_PASSWORD": "pw-1234"},
     "SMTP_SECURITY=none would send SMTP_PASSWORD in clear"),
])
def test_production_refuses_what_would_lose_or_leak_messages(env: dict[str, str],
                                                             message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**PRODUCTION | env)


def test_production_takes_a_real_relay_and_sms_off_or_over_http() -> None:
    relay = config(**PRODUCTION, SMTP_HOST="smtp.example.com", SMTP_PORT="465",
                   SMTP_SECURITY="tls", SMTP_USERNAME="m", SMTP_PASSWORD="pw-1234")
    unauthenticated_local = config(**PRODUCTION)
    twilio = config(**PRODUCTION | {
        "NOTIFY_SMS_PROVIDER": "http", "NOTIFY_SMS_ACCOUNT_SID": "AC1",
        "NOTIFY_SMS_AUTH_TOKEN": "tok-1234", "NOTIFY_SMS_FROM": "+15005550006"})

    assert relay.smtp_credentials == ("m", "pw-1234")
    assert unauthenticated_local.smtp_credentials is None
    assert twilio.sms_provider == "http"


# --- SMTP as real servers speak it -----------------------------------------------------------

def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "smtp.crt", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Keep:
    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802 - aiosmtpd's name
                          envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


class TlsServer:
    """aiosmtpd behind TLS: STARTTLS required before anything else, or TLS from the first
    byte; AUTH only over TLS, for user `mailer`, password `pw-1234`."""

    def __init__(self, cert: tuple[Path, Path], *, implicit: bool) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(*cert)
        self.implicit = implicit
        self.handler = _Keep()
        self.port = 0
        self._server: asyncio.Server | None = None

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"mailer", b"pw-1234")
        return AuthResult(success=ok, handled=False)

    def _protocol(self) -> SMTP:
        if self.implicit:  # the whole connection is TLS, which aiosmtpd does not see itself
            return SMTP(self.handler, hostname="localhost", authenticator=self._authenticate,
                        auth_require_tls=False)
        return SMTP(self.handler, hostname="localhost", authenticator=self._authenticate,
                    tls_context=self.context, require_starttls=True)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", 0, ssl=self.context if self.implicit else None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(params=["starttls", "tls"])
async def tls_server(request: pytest.FixtureRequest,
                     certificate: tuple[Path, Path]) -> AsyncIterator[TlsServer]:
    server = TlsServer(certificate, implicit=request.param == "tls")
    await server.start()
    yield server
    await server.stop()


def _mailer(server: TlsServer, certificate: tuple[Path, Path], **env: str) -> Mailer:
    return Mailer(config(SMTP_HOST="127.0.0.1", SMTP_PORT=str(server.port),
                         SMTP_SECURITY="tls" if server.implicit else "starttls",
                         SMTP_CA_FILE=str(certificate[0]), SMTP_USERNAME="mailer", **env))


EMAIL = Email(subject="Over TLS", text="plain\n", html="<p>html</p>")


async def test_e_mail_goes_over_tls_with_the_credentials(
        tls_server: TlsServer, certificate: tuple[Path, Path]) -> None:
    mailer = _mailer(tls_server, certificate, SMTP_PASSWORD="pw-1234")

    message_id = await mailer.send(mailer.compose("tls@example.com", EMAIL))
    await mailer.ping()

    [envelope] = tls_server.handler.received
    assert envelope.rcpt_tos == ["tls@example.com"]
    assert message_id.encode() in (envelope.original_content or b"")


async def test_a_refused_login_is_transient_ours_to_fix_then_replay(
        tls_server: TlsServer, certificate: tuple[Path, Path]) -> None:
    mailer = _mailer(tls_server, certificate, SMTP_PASSWORD="wrong")

    with pytest.raises(SendFailed) as failed:
        await mailer.send(mailer.compose("tls@example.com", EMAIL))

    assert failed.value.permanent is False
    assert "535" in str(failed.value)
    assert tls_server.handler.received == []


async def test_an_untrusted_certificate_is_refused(tls_server: TlsServer) -> None:
    mailer = Mailer(config(SMTP_HOST="127.0.0.1", SMTP_PORT=str(tls_server.port),
                           SMTP_SECURITY="tls" if tls_server.implicit else "starttls"))

    with pytest.raises(SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await mailer.send(mailer.compose("tls@example.com", EMAIL))

    assert tls_server.handler.received == []


async def test_the_service_authenticates_to_its_smtp_server(make_scene: MakeScene) -> None:
    guarded = SmtpSink(authenticate=lambda user, password: (user, password) == ("m", "pw"))
    await guarded.start()
    try:
        scene = await make_scene(SMTP_PORT=str(guarded.port), SMTP_USERNAME="m",
                                 SMTP_PASSWORD="pw")
        rae = scene.traveller("Rae")
        event = await scene.publish(booking_event("booking.confirmed", rae))

        await scene.delivery(event, status="sent")
        assert len(guarded.to(rae["user"]["email"])) == 1
    finally:
        await guarded.stop()
