"""realtime started with the original's `ALLOWED_ORIGINS`: the pages allowed to open /ws."""

from __future__ import annotations

from realtime.tests.conftest import Connect, MakeServer, upgrade_headers


async def test_the_original_s_allowed_origins_decide_who_opens_a_websocket(
        make_server: MakeServer, connect: Connect) -> None:
    server = await make_server(ALLOWED_ORIGINS="https://tours.example")

    await connect(server, origin="https://tours.example")
    refused = await server.get("/ws", headers=upgrade_headers(Origin="http://localhost:8080"))

    assert refused.status == 403
