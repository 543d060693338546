"""Run the realtime service: `python -m realtime`."""

from common.http import run_service
from realtime.app import create_app
from realtime.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
