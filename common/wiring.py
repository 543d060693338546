"""The shape of every resource's life beside a service's app: a cleanup context opens it on
start-up, yields, and closes it on shutdown (aiohttp closes only what started, in reverse)."""

from collections.abc import AsyncIterator, Callable

from aiohttp import web

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
