"""gateway: the single entry point: proxy, token check, rate limits, circuit breakers, CORS."""
