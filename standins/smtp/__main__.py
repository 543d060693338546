"""Run the SMTP sink: `python -m standins.smtp` (SMTP on 127.0.0.1:1025, HTTP API on :1080)."""

from common.http import run_service
from standins.smtp.app import create_app
from standins.smtp.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
