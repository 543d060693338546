"""A local emulator of the part of Stripe's API that tourbook calls, reached by the official
`stripe` SDK with only its API base changed. See README.md beside this file."""
