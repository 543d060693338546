"""`/metrics`: request count and latency by route template and status, from a registry per app."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.tests import demo_service
from common.tests.support import Keys, demo_config


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    async def make():
        return await aiohttp_client(demo_service.create_app(demo_config(Keys.create(tmp_path))))

    return make


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`{(sample name, sorted labels): value}` as Prometheus would read them."""
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await resp.text())
            for s in family.samples}


def requests(samples, route: str, status: str, method: str = "GET") -> float:
    labels = (("method", method), ("route", route), ("service", "demo"), ("status", status))
    return samples.get(("http_requests_total", labels), 0.0)


def latency_count(samples, route: str, status: str, method: str = "GET") -> float:
    labels = (("method", method), ("route", route), ("service", "demo"), ("status", status))
    return samples.get(("http_request_duration_seconds_count", labels), 0.0)


async def test_requests_are_counted_by_route_template_and_status(make_client):
    client = await make_client()
    for widget in ("w1", "w1", "nope", "other"):
        await client.get(f"/api/widgets/{widget}")
    await client.post("/api/widgets", json={"name": "Anvil", "unitPrice": 1})
    await client.post("/api/widgets", json={})
    samples = await scrape(client)
    assert requests(samples, "/api/widgets/{id}", "200") == 2
    assert requests(samples, "/api/widgets/{id}", "404") == 2
    assert requests(samples, "/api/widgets", "201", "POST") == 1
    assert requests(samples, "/api/widgets", "400", "POST") == 1
    assert latency_count(samples, "/api/widgets/{id}", "200") == 2
    # Ids never become label values.
    assert not any("w1" in dict(labels).get("route", "") for _, labels in samples)


async def test_unmatched_paths_and_failures_are_counted_without_new_labels(make_client):
    client = await make_client()
    for path in ("/a", "/b/c", "/d?e=f"):
        await client.get(path)
    await client.delete("/api/widgets")
    await client.get("/api/boom")
    await client.request("PROPFIND", "/api/widgets")
    samples = await scrape(client)
    assert requests(samples, "unmatched", "404") == 3
    assert requests(samples, "unmatched", "405", "DELETE") == 1
    assert requests(samples, "/api/boom", "500") == 1
    # Methods outside the usual ones (WebDAV's here) share one label value.
    assert requests(samples, "unmatched", "405", "OTHER") == 1


async def test_latency_is_a_histogram_with_buckets(make_client):
    client = await make_client()
    await client.get("/api/widgets/w1")
    samples = await scrape(client)
    buckets = {dict(labels)["le"]: value for (name, labels), value in samples.items()
               if name == "http_request_duration_seconds_bucket"
               and dict(labels)["route"] == "/api/widgets/{id}"}
    assert buckets["+Inf"] == 1 and len(buckets) > 5
    assert sorted(buckets.values()) == [buckets[k] for k in sorted(buckets, key=float)]


async def test_two_apps_in_one_process_do_not_share_counters(make_client):
    first, second = await make_client(), await make_client()
    for _ in range(3):
        await first.get("/api/widgets/w1")
    await second.get("/api/widgets/w1")
    assert requests(await scrape(first), "/api/widgets/{id}", "200") == 3
    assert requests(await scrape(second), "/api/widgets/{id}", "200") == 1
