"""notify's settings: `NOTIFY_*` variables, the SMTP server's (`SMTP_*`, as mail tools name them),
the upstream URLs other services read too (`AUTH_URL`, `BOOKING_URL`), and the shared ones of
`common.config.BaseConfig`.

The SMTP password and the SMS token are secrets (kept out of repr and logs) that only some setups
need, so they are checked here rather than by the base class's "no placeholder" rule, which would
demand them of every production deployment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any, ClassVar, Literal, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator, model_validator

from common.config import Alias, BaseConfig, Build, Retired, is_placeholder

SmtpSecurity = Literal["none", "starttls", "tls"]
SmsProvider = Literal["log", "http", "off"]
TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages.json"


def _address(value: str) -> str:
    """A bare e-mail address, validated (the display name, if any, is kept by the caller)."""
    _, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an e-mail address: {exc}") from None
    return address


def _sender(address_var: str, name_var: str) -> Build:
    """`NOTIFY_MAIL_FROM` from the original's address and name variables, either of which may
    be missing (the default's part stands in)."""
    def build(given: Mapping[str, str], default: Any) -> str:
        name, address = parseaddr(str(default))
        try:
            return str(Address(given.get(name_var, name),
                               addr_spec=given.get(address_var, address)))
        except HeaderParseError as exc:
            raise ValueError(f"not an e-mail address: {exc}") from None

    return build


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Config(BaseConfig):
    service: ClassVar[str] = "notify"
    env_prefix: ClassVar[str] = "NOTIFY_"
    # The original's notification service: its README, its code and its .env.example differ.
    aliases: ClassVar[tuple[Alias, ...]] = (
        *BaseConfig.aliases,
        Alias(("SMTP_USER",), "smtp_username"),
        Alias(("SMTP_PASS",), "smtp_password"),
        Alias(("SMTP_FROM_EMAIL", "SMTP_FROM_NAME"), "mail_from",
              _sender("SMTP_FROM_EMAIL", "SMTP_FROM_NAME")),
        Alias(("SENDER_EMAIL", "SENDER_NAME"), "mail_from",
              _sender("SENDER_EMAIL", "SENDER_NAME")),
        Alias(("TWILIO_ACCOUNT_SID",), "sms_account_sid"),
        Alias(("TWILIO_AUTH_TOKEN",), "sms_auth_token"),
        Alias(("TWILIO_PHONE_NUMBER",), "sms_from"),
    )
    retired: ClassVar[tuple[Retired, ...]] = (
        *BaseConfig.retired,
        Retired("RABBITMQ_QUEUE", "notify always consumes notification_queue"),
        Retired("REDIS_TTL", "an event is remembered as handled for 24 hours"),
        Retired("FIREBASE_SERVER_KEY", "no push notifications: e-mail and SMS only"),
    )

    port: int = Field(3006, ge=0, le=65535)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/notification_service_db"
    auth_url: str = Field("http://127.0.0.1:3005", alias="AUTH_URL")
    booking_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_URL")

    # -- e-mail --------------------------------------------------------------------------------
    smtp_host: str = Field("127.0.0.1", alias="SMTP_HOST", min_length=1, description=(
        "SMTP server e-mail is handed to (the local sink in development)"))
    smtp_port: int = Field(1025, alias="SMTP_PORT", ge=1, le=65535, description=(
        "Its port: 1025 is the local sink; 587 is usual with starttls, 465 with tls"))
    smtp_security: SmtpSecurity = Field("none", alias="SMTP_SECURITY", description=(
        "none (plain, for the local sink), starttls (upgrade after connecting) or tls "
        "(implicit TLS from the first byte)"))
    smtp_username: str = Field("", alias="SMTP_USERNAME", description=(
        "Login for SMTP AUTH; empty sends without authenticating"))
    smtp_password: str = Field("", alias="SMTP_PASSWORD", repr=False, description=(
        "Password for SMTP AUTH (secret; required with SMTP_USERNAME)"))
    smtp_timeout: float = Field(10.0, alias="SMTP_TIMEOUT", gt=0, le=120, description=(
        "Seconds one e-mail may take, connection and every command included"))
    smtp_ca_file: str | None = Field(None, alias="SMTP_CA_FILE", description=(
        "PEM bundle of the CAs that sign the SMTP server's certificate (a private relay); "
        "unset trusts the system's CAs"))
    mail_from: str = Field("tourbook <noreply@tourbook.example>", description=(
        "From: of every e-mail, 'Name <address>' or an address"))
    operator_email: str = Field("ops@tourbook.example", description=(
        "Where operators' alerts go (tour.availability.low)"))
    public_url: str = Field("http://localhost:8080", description=(
        "Base URL of the web site, for the links in messages"))

    # -- SMS -----------------------------------------------------------------------------------
    sms_provider: SmsProvider = Field("log", description=(
        "http (a Twilio-style REST API), log (development: the text is logged, not sent) or "
        "off (no SMS: every SMS is recorded as skipped); log is refused in production"))
    sms_http_url: str = Field(TWILIO_URL, description=(
        "The provider's endpoint that takes a form POST of To, From and Body; "
        "{account_sid} is replaced by NOTIFY_SMS_ACCOUNT_SID"))
    sms_account_sid: str = Field("", description=(
        "Account id at the SMS provider, the Basic-auth user of its API"))
    sms_auth_token: str = Field("", repr=False, description=(
        "API token at the SMS provider, the Basic-auth password (secret)"))
    sms_from: str = Field("", description="Sender number or id of SMS (e.g. +15005550006)")
    sms_timeout: float = Field(10.0, gt=0, le=60, description=(
        "Seconds one call to the SMS provider may take"))

    # -- upstreams and the consumer --------------------------------------------------------------
    auth_timeout: float = Field(3.0, gt=0, le=30, description=(
        "Seconds a call to auth (a user's opt-ins and phone) may take"))
    booking_timeout: float = Field(3.0, gt=0, le=30, description=(
        "Seconds a call to booking (the booking a payment is about) may take"))
    breaker_reset_timeout: float = Field(15.0, gt=0, description=(
        "Seconds an open auth or booking circuit waits before one probe call decides"))
    concurrency: int = Field(8, ge=1, le=256, description=(
        "Events handled at once (different bookings; one booking's events stay in order)"))

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        _address(value)
        return value

    @field_validator("operator_email")
    @classmethod
    def _operator_is_an_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def mail_from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    @property
    def smtp_credentials(self) -> tuple[str, str] | None:
        return (self.smtp_username, self.smtp_password) if self.smtp_username else None

    @property
    def sms_url(self) -> str:
        return self.sms_http_url.replace("{account_sid}", self.sms_account_sid)

    @property
    def handler_timeout(self) -> float:
        """Long enough for both lookups, an e-mail and an SMS: a handler cut short by the
        runtime would leave its rows pending until the retry."""
        return self.auth_timeout + self.booking_timeout + self.smtp_timeout + self.sms_timeout + 5

    @model_validator(mode="after")
    def _secrets_where_needed(self) -> Self:
        if bool(self.smtp_username) != bool(self.smtp_password):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together (both or neither)")
        if self.sms_provider == "http":
            missing = [name for name, value in (
                ("NOTIFY_SMS_ACCOUNT_SID", self.sms_account_sid),
                ("NOTIFY_SMS_AUTH_TOKEN", self.sms_auth_token),
                ("NOTIFY_SMS_FROM", self.sms_from)) if not value.strip()]
            if missing:
                raise ValueError(f"NOTIFY_SMS_PROVIDER=http needs {', '.join(missing)}")
            if not self.sms_http_url.startswith(("http://", "https://")):
                raise ValueError("NOTIFY_SMS_HTTP_URL must be an http:// or https:// URL")
        if self.production:
            self._fit_for_production()
        return self

    def _fit_for_production(self) -> None:
        if self.smtp_credentials and is_placeholder(self.smtp_password):
            raise ValueError("SMTP_PASSWORD: a placeholder secret is refused in production")
        if (self.smtp_credentials and self.smtp_security == "none"
                and not _is_loopback(self.smtp_host)):
            raise ValueError("SMTP_SECURITY=none would send SMTP_PASSWORD in clear over the "
                             "network: use starttls or tls in production")
        if self.sms_provider == "log":
            raise ValueError("NOTIFY_SMS_PROVIDER=log only logs SMS: choose http (or off) in "
                             "production")
        if self.sms_provider == "http" and is_placeholder(self.sms_auth_token):
            raise ValueError("NOTIFY_SMS_AUTH_TOKEN: a placeholder secret is refused in "
                             "production")
