"""catalog: tours, departures, categories, destinations and search; the authority on seats."""
