"""Mechanisms that keep the gateway standing when others fall over: the circuit breaker and the
token-bucket rate limiter (see docs/resilience.md)."""

from common.resilience.breaker import (
    BreakerOptions,
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    State,
)
from common.resilience.bucket import (
    Decision,
    FallbackLimiter,
    LimiterUnavailableError,
    LocalTokenBucketLimiter,
    Policy,
    RateLimiter,
    RedisTokenBucketLimiter,
    limiter_client,
)

__all__ = [
    "BreakerOptions",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Decision",
    "FallbackLimiter",
    "LimiterUnavailableError",
    "LocalTokenBucketLimiter",
    "Policy",
    "RateLimiter",
    "RedisTokenBucketLimiter",
    "State",
    "limiter_client",
]
