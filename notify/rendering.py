"""Messages from the Jinja2 templates of `notify/templates/`, the one place they live.

An e-mail template `<name>` is three files: `<name>.subject` (one line), `<name>.txt` and
`<name>.html` (which extends `_layout.html`); an SMS template is `sms_<name>.txt`. Undefined
variables are errors (StrictUndefined), never blanks in a customer's mailbox; HTML is escaped,
plain text and subjects are not. Filters: `money(currency)`, `day`, `moment`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notify import formatting

FOLDER = Path(__file__).parent / "templates"
SMS_MAX = 320  # two SMS segments; providers split longer texts into more (billed) parts


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self, folder: Path = FOLDER) -> None:
        self.folder = folder
        self._env = Environment(
            loader=FileSystemLoader(folder), undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",),
                                         default_for_string=False, default=False),
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
        self._env.filters.update(money=formatting.money, day=formatting.day,
                                 moment=formatting.moment)

    def names(self) -> set[str]:
        """Every template: e-mail ones by their subject file, SMS ones by their text."""
        return ({p.name.removesuffix(".subject") for p in self.folder.glob("*.subject")}
                | {p.stem for p in self.folder.glob("sms_*.txt")})

    def check(self) -> None:
        """Parse every template and check each e-mail template has its three parts; raises
        jinja2.TemplateError or FileNotFoundError."""
        for path in self.folder.iterdir():
            if path.suffix in (".subject", ".txt", ".html"):
                self._env.get_template(path.name)
        for name in self.names():
            wanted = [f"{name}.txt"] if name.startswith("sms_") else [
                f"{name}.{part}" for part in ("subject", "txt", "html")]
            missing = [file for file in wanted if not (self.folder / file).is_file()]
            if missing:
                raise FileNotFoundError(f"template {name} lacks {', '.join(missing)}")

    def email(self, name: str, context: Mapping[str, Any]) -> Email:
        subject = self._render(f"{name}.subject", context)
        # One line, whatever the data held: a newline in a header would start another header.
        subject = re.sub(r"\s+", " ", subject).strip()
        return Email(subject=subject, text=self._render(f"{name}.txt", context).strip() + "\n",
                     html=self._render(f"{name}.html", context))

    def sms(self, name: str, context: Mapping[str, Any]) -> str:
        text = re.sub(r"\s+", " ", self._render(f"{name}.txt", context)).strip()
        # "...", not "…": a character outside GSM-7 would bill every segment as UCS-2.
        return text if len(text) <= SMS_MAX else text[:SMS_MAX - 3] + "..."

    def _render(self, template: str, context: Mapping[str, Any]) -> str:
        return self._env.get_template(template).render(context)
