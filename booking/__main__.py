"""Run the booking service: `python -m booking`."""

from booking.app import create_app
from booking.config import Config
from common.http import run_service

if __name__ == "__main__":
    run_service(Config, create_app)
