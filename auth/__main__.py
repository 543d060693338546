"""Run the auth service: `python -m auth`."""

from auth.app import create_app
from auth.config import Config
from common.http import run_service

if __name__ == "__main__":
    run_service(Config, create_app)
