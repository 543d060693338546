"""Operator tooling: the `./ops/dev` CLI, infrastructure checks and local stand-ins."""
