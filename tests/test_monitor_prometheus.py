"""/metrics passes ``promtool check metrics`` (the exposition format and Prometheus' naming
lint), has every family the Grafana dashboard uses, and never labels by contact or session."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import aiohttp
import pytest

from contactd.keys import ENGINE, METRICS
from tests.monitor_helpers import MakeFloor, floor_guard, make_floor  # noqa: F401  (fixtures)

DASHBOARD = Path(__file__).parent.parent / "config" / "grafana-dashboard.json"


async def test_metrics_pass_promtool_and_keep_labels_bounded(make_floor: MakeFloor) -> None:  # noqa: F811
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: scripts/install-system-deps.sh --test installs it")
    floor = await make_floor()
    engine = floor.app[ENGINE]
    await engine.login("a1", queues=["sales"], state="away")
    await engine.enqueue("sales", contact_id="secret-contact-1")
    offer = await engine.force_offer("secret-contact-1", "a1")
    await engine.accept(offer.offer_id or "", "a1")
    await engine.end("secret-contact-1", agent_id="a1")
    await engine.enqueue("sales", contact_id="secret-contact-2")
    await engine.move_contact("secret-contact-2", "support")
    await engine.cancel("secret-contact-2")
    sup = await floor.supervisor("sup")
    assert (await sup.ok("refresh"))["snapshot"]["queues"]  # a counted socket event
    m = floor.app[METRICS]
    m.webhook_events.labels("ivr", "call.incoming", "enqueue").inc()
    m.payouts.labels("paid").inc()
    async with aiohttp.ClientSession() as http, http.get(floor.base + "/metrics") as r:
        text = await r.text()
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(text.encode())
    assert proc.returncode == 0, out.decode()
    assert out.decode().strip() == "", out.decode()  # no lint problem either
    assert "secret-contact" not in text
    families = {f.removesuffix("_total") for f in re.findall(r"^# TYPE (\S+) ", text, re.M)}
    wanted = {
        "contactd_queue_waiting",
        "contactd_wait_seconds",
        "contactd_handle_seconds",
        "contactd_offers",
        "contactd_dispatch_latency_seconds",
        "contactd_active_sessions",
        "contactd_agents",
        "contactd_webhook_events",
        "contactd_socket_events",
        "contactd_payouts",
        "contactd_contacts_offered",
        "contactd_contacts_answered",
        "contactd_contacts_abandoned",
    }
    assert wanted <= families, wanted - families
    # the dashboard only queries metrics that exist
    used = set(re.findall(r"contactd_[a-z_]+", json.dumps(json.loads(DASHBOARD.read_text()))))
    exposed = set(re.findall(r"^(contactd_[a-z_]+)", text, re.M))
    assert used and used <= exposed, used - exposed


def test_tallied_counters_and_histograms_render_as_prometheus_would() -> None:
    """The hot paths count into plain-number tallies that are added in when /metrics is
    rendered: the exposition is the same as prometheus_client's own counting."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from contactd.metrics import Metrics, child

    m = Metrics()
    reference = Histogram(
        "contactd_http_request_duration_seconds",
        "reference",
        ["route"],
        registry=CollectorRegistry(),
        buckets=m.http_seconds._upper_bounds,
    )
    samples = [0.0001, 0.005, 0.0051, 0.3, 0.3, 2.5, 9.0, 100.0]
    for n, seconds in enumerate(samples):
        child(m.http_requests, "/x", "GET", "200").inc()
        child(m.http_seconds, "/x").observe(seconds)
        reference.labels("/x").observe(seconds)
        if n == 3:  # a render midway: what was counted so far is in, nothing twice
            assert 'contactd_http_requests_total{method="GET",route="/x",status="200"} 4.0' in (
                m.render().decode()
            )

    def series(text: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if line.startswith("contactd_http_request_duration_seconds_") and "_created" not in line
        ]

    ours = m.render().decode()
    assert series(ours) == series(generate_latest(reference).decode())
    assert 'contactd_http_requests_total{method="GET",route="/x",status="200"} 8.0' in ours
    with pytest.raises(ValueError):
        child(m.http_requests, "/x", "GET", "200").inc(-1)
