"""realtime: WebSockets at `/ws` pushing seat availability, and each user's own booking changes,
to browsers; one broadcast queue per process so every replica gets every event."""
