"""auth's settings: `AUTH_*` variables plus the shared ones of `common.config.BaseConfig`."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from common.config import BaseConfig


class Config(BaseConfig):
    service: ClassVar[str] = "auth"
    env_prefix: ClassVar[str] = "AUTH_"

    port: int = Field(3005, ge=0, le=65535)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/auth_service_db"
    jwt_private_key_file: str = Field(".keys/jwt-private.pem", alias="JWT_PRIVATE_KEY_FILE")
    access_token_ttl: int = Field(15 * 60, ge=60, description="Access token lifetime (seconds)")
    refresh_token_ttl: int = Field(7 * 24 * 3600, ge=300, description="Refresh token lifetime (s)")
    refresh_reuse_grace: float = Field(
        5.0, ge=0, le=60,
        description="A spent refresh token presented again within this many seconds of its "
                    "rotation is refused without revoking the session (concurrent refresh)")
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    booking_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_URL")
    booking_timeout: float = Field(2.0, gt=0, le=30, description=(
        "Seconds the administrators' user page waits for the user's bookings from booking"))
    breaker_reset_timeout: float = Field(15.0, gt=0, description=(
        "Seconds the circuit to booking stays open before one call is tried again"))

    @model_validator(mode="after")
    def _strong_hashing_in_production(self) -> Self:
        if self.production and self.bcrypt_rounds < 12:
            raise ValueError("AUTH_BCRYPT_ROUNDS must be at least 12 in production")
        return self
