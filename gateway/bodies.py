"""Request bodies on their way upstream: a gzip or deflate body is decoded here (so checked whole:
a broken, truncated or padded stream is the client's 400) and sent on plain, never decoded twice;
the gateway's server leaves bodies as they came, so nothing else decodes them first."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from common.http.bodies import UndecodableBody

PIECE = 64 * 1024
_GZIP, _ZLIB, _RAW_DEFLATE = 31, 15, -15


class Decoder:
    """One body's gzip or deflate stream, decoded into pieces of at most `piece` bytes however
    much a few compressed bytes expand to, so that the upload limit stops a compression bomb
    before it is in memory."""

    def __init__(self, coding: str, piece: int = PIECE) -> None:
        self.coding, self.piece = coding, piece
        self._stream: zlib._Decompress | None = None

    def _start(self, first: int) -> zlib._Decompress:
        if self.coding == "gzip":
            return zlib.decompressobj(_GZIP)
        # `deflate` names the zlib format (RFC 9110), yet some clients send bare deflate data;
        # a zlib header's low nibble is always 8 (the method), as aiohttp tells them apart too.
        return zlib.decompressobj(_ZLIB if first & 0x0F == 8 else _RAW_DEFLATE)

    def feed(self, data: bytes) -> Iterator[bytes]:
        more = False  # a full piece came out: zlib may hold more output for the same input
        while data or more:
            stream = self._stream
            if stream is None or (data and stream.eof):
                if stream is not None and self.coding != "gzip":
                    raise UndecodableBody()  # bytes after the end of the stream
                stream = self._stream = self._start(data[0])  # gzip may hold several members
            try:
                out = stream.decompress(data, self.piece)
            except zlib.error:
                raise UndecodableBody() from None
            more = len(out) == self.piece and not stream.eof
            data = stream.unused_data if stream.eof else stream.unconsumed_tail
            if out:
                yield out

    def finish(self) -> None:
        """The body ended: it must have ended with its stream (an empty body is plain)."""
        if self._stream is not None and not self._stream.eof:
            raise UndecodableBody()
