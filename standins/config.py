"""What every stand-in's settings share: they exist for development and tests, never production."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from common.config import Alias, BaseConfig, Retired


class StandInConfig(BaseConfig):
    # The original had no stand-ins: its names are the services' business, not theirs.
    aliases: ClassVar[tuple[Alias, ...]] = ()
    retired: ClassVar[tuple[Retired, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _never_in_production(cls, values: Any) -> Any:
        # Before the fields: this, not a placeholder secret, is the reason to give.
        if isinstance(values, dict) and "production" in (values.get("APP_ENV"), values.get("env")):
            raise ValueError(f"the {cls.service} is for development and tests: it refuses "
                             "APP_ENV=production")
        return values
