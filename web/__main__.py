"""Run the web site: `python -m web`."""

from common.http import run_service
from web.app import create_app
from web.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
