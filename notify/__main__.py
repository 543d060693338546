"""Run the notify service: `python -m notify`."""

from common.http import run_service
from notify.app import create_app
from notify.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
