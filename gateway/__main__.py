"""Run the gateway: `python -m gateway`."""

from common.http import run_service
from gateway.app import create_app
from gateway.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
