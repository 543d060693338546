"""Wire fields more than one service validates the same way: an e-mail address and an
international phone number, normalised to one spelling, with what they check stated in
/openapi.json (each pattern is as strict as its validator or stricter)."""

from __future__ import annotations

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_email(value: str) -> str:
    """One spelling per address: validated, Unicode-normalised, lower-cased."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def normalise_phone(value: str | None) -> str | None:
    """The number without spaces, dots, dashes or parentheses; refused unless international."""
    if value is None:
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if not PHONE.match(compact):
        raise ValueError("must be an international number such as +33612345678")
    return compact


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalise_email),
                  Field(json_schema_extra={"format": "email"})]
Phone = Annotated[str | None, StringConstraints(max_length=32), AfterValidator(normalise_phone),
                  Field(json_schema_extra={"pattern": PHONE.pattern.replace(r"\d", "[0-9]")})]
