"""auth's wire models: what requests must contain and what responses look like."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from common.http import Schema
from common.http.fields import Email
from common.http.fields import Phone as BasePhone

# check_password_policy as a JSON Schema (ECMA 262) pattern; [\s\S] is any character, newlines too.
_LOWER_UPPER_DIGIT = r"^(?=[\s\S]*[a-z])(?=[\s\S]*[A-Z])(?=[\s\S]*[0-9])"


def check_password_policy(value: str) -> str:
    if not (re.search(r"[a-z]", value) and re.search(r"[A-Z]", value) and re.search(r"\d", value)):
        raise ValueError(
            "must contain at least one lowercase letter, one uppercase letter and a digit")
    return value


# The `json_schema_extra` below state in /openapi.json what the validators check, so that clients
# (and generated tests) can tell a valid value; each is as strict as its validator or stricter
# (Email and Phone are common.http.fields').
Password = Annotated[str, StringConstraints(min_length=8, max_length=128),
                     AfterValidator(check_password_policy),
                     Field(json_schema_extra={"pattern": _LOWER_UPPER_DIGIT})]
# Not blank once stripped (ECMA `\s` lacks U+0085, which the stripping removes too).
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                 Field(json_schema_extra={"pattern": r"[^\s\u0085]"})]
Phone = Annotated[BasePhone, Field(description=(
    "International format; spaces, dots, dashes and parentheses are removed first"))]


class RegisterIn(Schema):
    email: Email
    password: Password
    first_name: Name
    last_name: Name
    phone: Phone = None


class LoginIn(Schema):
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RefreshIn(Schema):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class NotificationPreferences(Schema):
    email: bool
    sms: bool


class NotificationPreferencesPatch(Schema):
    # Strict: a JSON true or false only, so a 0 or a "no" sent by mistake is refused, not guessed.
    email: StrictBool | None = None
    sms: StrictBool | None = None


class ProfilePatch(Schema):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # what _not_empty checks

    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone = None
    notification_preferences: NotificationPreferencesPatch | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ProfilePatch:
        if not self.model_fields_set:
            raise ValueError("at least one of firstName, lastName, phone, notificationPreferences")
        return self


Role = Literal["customer", "manager", "admin"]


class UserOut(Schema):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: Role
    is_active: bool
    notification_preferences: NotificationPreferences
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AuthOut(Schema):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Access token lifetime in seconds")


class TokensOut(Schema):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int


class Jwk(Schema):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class JwksOut(Schema):
    keys: list[Jwk]


class ContactOut(Schema):
    """What other services may learn about a user over `/internal`."""

    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    is_active: bool
    notification_preferences: NotificationPreferences


# --- administration --------------------------------------------------------------------------

class UserListQuery(Schema):
    q: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        None, description="Part of the e-mail or of the name, any case")
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)


class UserListOut(Schema):
    items: list[UserOut]
    page: int
    limit: int
    total: int


class UserPatch(Schema):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # what _not_empty checks

    role: Role | None = None
    # Strict: a JSON true or false only; a 0 sent by mistake must not disable an account.
    is_active: StrictBool | None = Field(None, description="false disables the account")

    @model_validator(mode="after")
    def _not_empty(self) -> UserPatch:
        if self.role is None and self.is_active is None:
            raise ValueError("at least one of role, isActive")
        return self


class UserBookingOut(Schema):
    """A booking as the administrators' user page lists it (booking's answer, abridged)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    tour_id: str
    tour_title: str
    tour_date: date
    participants: int
    total_amount: int
    currency: str
    status: str
    payment_status: str
    created_at: datetime


class UserBookingsOut(Schema):
    available: bool = Field(description="false when booking could not be asked: no items then")
    items: list[UserBookingOut]
    total: int | None = Field(description="All the user's bookings; null when not available")


class UserDetailOut(Schema):
    user: UserOut
    bookings: UserBookingsOut
