"""The `.env` rule: it fills in what the environment lacks and never overrides what is set."""

from __future__ import annotations

from pathlib import Path

from ops import envfile

DOTENV = """
# a comment, then a blank line

AMQP_URL=amqp://guest:guest@127.0.0.1:5672/
export REDIS_URL = redis://127.0.0.1:6379/1  # the dev Redis
ADMIN_PASSWORD='s3cret #not a comment'
GREETING="two\\nlines"
EMPTY=
not a variable line
"""


def test_dotenv_values_fill_in_the_environment(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    environ: dict[str, str] = {}

    envfile.load(path, environ)

    assert environ == {
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "REDIS_URL": "redis://127.0.0.1:6379/1",
        "ADMIN_PASSWORD": "s3cret #not a comment",
        "GREETING": "two\nlines",
        "EMPTY": "",
    }


def test_the_real_environment_wins_over_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("REDIS_URL=redis://from-dotenv:6379/0\nAMQP_URL=amqp://from-dotenv/\n")
    environ = {"REDIS_URL": "redis://from-environment:6379/0", "AMQP_URL": ""}

    added = envfile.load(path, environ)

    assert environ == {"REDIS_URL": "redis://from-environment:6379/0", "AMQP_URL": ""}
    assert added == {}


def test_a_missing_dotenv_changes_nothing(tmp_path: Path) -> None:
    environ = {"A": "1"}
    assert envfile.load(tmp_path / ".env", environ) == {}
    assert environ == {"A": "1"}
