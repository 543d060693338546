"""The pieces every service's aiohttp app is built from."""

from common.http.app import run_service, service_app, verifier_ctx
from common.http.validation import Schema, endpoint, json_response

__all__ = ["Schema", "endpoint", "json_response", "run_service", "service_app", "verifier_ctx"]
