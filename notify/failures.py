"""The one failure every channel reports: a message not sent, and whether trying again could
help (transient: the event is retried) or not (permanent: recorded as failed, never retried)."""


class SendFailed(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
