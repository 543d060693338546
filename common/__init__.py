"""The shared runtime of every tourbook service: config, logging, HTTP, db, bus, auth,
resilience."""
