"""auth: users, passwords, access tokens (EdDSA JWT), rotating refresh tokens, profile, JWKS."""
