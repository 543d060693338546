"""Run the Stripe stand-in: `python -m standins.stripe` (127.0.0.1:12111 unless configured)."""

from common.http import run_service
from standins.stripe.app import create_app
from standins.stripe.config import Config

if __name__ == "__main__":
    run_service(Config, create_app)
