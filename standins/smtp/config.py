"""The sink's settings: `SMTP_STANDIN_*` variables plus the shared ones of
`common.config.BaseConfig`. `PORT` is its HTTP API; `SMTP_PORT` is where it receives mail. It
refuses to run in production."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from common.config import CsvList
from standins.config import StandInConfig


class Config(StandInConfig):
    service: ClassVar[str] = "smtp-standin"
    env_prefix: ClassVar[str] = "SMTP_STANDIN_"

    port: int = Field(1080, ge=0, le=65535, description="Port of the HTTP API (GET /messages)")
    smtp_port: int = Field(1025, ge=0, le=65535, description="Port that receives SMTP")
    directory: str | None = Field(".run/mail", description=(
        "Folder where every message is written as an .eml file (relative paths are taken from "
        "the checkout); empty keeps them in memory only"))
    keep: int = Field(1000, ge=1, description="Messages the HTTP API keeps (the newest)")
    refuse: CsvList = Field((), description=(
        "Recipients answered 550 (permanent), comma-separated addresses or *@domain"))
    defer: CsvList = Field((), description=(
        "Recipients answered 451 (try again later), comma-separated addresses or *@domain"))
    smtputf8: bool = Field(True, description=(
        "Offer SMTPUTF8, so that addresses beyond ASCII are taken (false: a server without it)"))

