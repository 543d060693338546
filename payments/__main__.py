"""Run the payments service: `python -m payments`."""

from common.http import run_service
from payments.app import create_app
from payments.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
