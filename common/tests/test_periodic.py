"""Background passes beside an app: they run every interval, a failing pass is logged and the
next one still runs, a dependency known to be away is a deferral, and interval 0 runs nothing."""

from __future__ import annotations

from aiohttp import web
from structlog.testing import capture_logs

from common.periodic import periodic_ctx
from common.testing import eventually


class Passes:
    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes, self.ran = list(outcomes), 0

    async def run_once(self) -> dict[str, int]:
        self.ran += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return {"done": 1}


async def serve(passes: Passes, interval: float, aiohttp_client, **options):
    app = web.Application()
    app.cleanup_ctx.append(periodic_ctx("demo_jobs", interval, lambda _: passes.run_once,
                                        task_name="demo-jobs", correlation_prefix="demo",
                                        **options))
    return await aiohttp_client(app)


async def test_failures_are_logged_and_the_next_pass_still_runs(aiohttp_client):
    passes = Passes(RuntimeError("database away"), TimeoutError("stripe away"))
    with capture_logs() as logs:
        client = await serve(passes, 0.01, aiohttp_client, deferred=(TimeoutError,))
        await eventually(lambda: passes.ran >= 3, message="three passes")
        await client.close()

    events = [e["event"] for e in logs]
    assert events[:3] == ["demo_jobs_failed", "demo_jobs_deferred", "demo_jobs_ran"]


async def test_interval_zero_runs_no_pass(aiohttp_client):
    passes = Passes()
    client = await serve(passes, 0, aiohttp_client)
    assert (await client.get("/nothing")).status == 404  # the app runs
    assert passes.ran == 0
