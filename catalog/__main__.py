"""Run the catalog service: `python -m catalog`."""

from catalog.app import create_app
from catalog.config import Config
from common.http import run_service

if __name__ == "__main__":
    run_service(Config, create_app)
