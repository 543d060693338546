"""The one failure every channel reports: a message not sent, and whether trying again could
help (transient: the event is retried, no sooner than `retry_after` seconds when the provider
said so) or not (permanent: recorded as failed, never retried)."""


class SendFailed(Exception):
    def __init__(self, message: str, *, permanent: bool,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
