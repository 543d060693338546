"""Local stand-ins for the third-party APIs tourbook calls, for development, tests and demos.

Kept out of the wheel and the image on purpose (pyproject's `packages.find` does not list it).
"""
