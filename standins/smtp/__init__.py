"""A local SMTP sink for development and tests: it receives real SMTP, keeps every message (in
memory, and as `.eml` files a developer can open), and can refuse or defer chosen recipients.

`python -m standins.smtp` serves SMTP on 127.0.0.1:1025 and a small HTTP API on 127.0.0.1:1080;
tests use `SmtpSink` in process. See README.md beside this file.
"""

from standins.smtp.sink import Received, SmtpSink

__all__ = ["Received", "SmtpSink"]
