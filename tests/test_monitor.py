"""The metric definitions end to end: scripted traffic with a fixed seed gives numbers the
test works out from its own script; the live monitor (socket and REST), the report for the
same day and the Prometheus counters all show exactly those numbers."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from contactd.clock import ManualClock
from contactd.keys import ENGINE, MONITOR
from contactd.routing.service import RoutingEngine
from tests.monitor_helpers import MakeFloor, floor_guard, make_floor  # noqa: F401  (fixtures)

SEED = 20261123
AGENTS = ("a1", "a2", "a3", "a4")
T = {"sales": 20_000, "support": 30_000}
SHORT = 5_000


@dataclass
class Expected:
    """What the script did, counted the way docs/metrics.md says, per queue."""

    q: dict[str, dict[str, int]] = field(default_factory=dict)
    agents: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, queue: str, key: str, n: int = 1) -> None:
        self.q.setdefault(queue, {}).setdefault(key, 0)
        self.q[queue][key] += n

    def agent(self, agent: str, key: str, n: int = 1) -> None:
        self.agents.setdefault(agent, {}).setdefault(key, 0)
        self.agents[agent][key] += n


@dataclass(order=True)
class Step:
    at_s: int
    seq: int
    kind: str = field(compare=False)
    contact: str = field(compare=False)
    arg: Any = field(compare=False, default=None)


def script(seed: int, n: int) -> tuple[list[Step], Expected]:
    """Contacts arrive every 25 s in sales; each is answered (maybe after a decline or a
    timed-out offer), abandoned, or moved to support and answered there."""
    rng = random.Random(seed)
    steps: list[Step] = []
    exp = Expected()
    seq = 0
    busy: dict[str, list[tuple[int, int]]] = {}

    def step(at_s: int, kind: str, contact: str, arg: Any = None) -> None:
        nonlocal seq
        seq += 1
        steps.append(Step(at_s, seq, kind, contact, arg))

    for i in range(n):
        cid, t0 = f"k{i:03d}", 60 + i * 25
        step(t0, "enqueue", cid, rng.randint(0, 2))
        exp.add("sales", "offered")
        fate = rng.random()
        queue = "sales"
        if fate < 0.2:
            waited = rng.randint(1, 40) * 1000
            step(t0 + waited // 1000, "cancel", cid)
            exp.add("sales", "abandoned")
            kind = "short" if waited < SHORT else "in_sl" if waited <= T["sales"] else "after"
            exp.add(
                "sales", {"short": "abandoned_short", "in_sl": "abandoned_in_sl"}.get(kind, "x")
            )
            continue
        if fate < 0.35:
            step(t0 + 2, "move", cid, "support")
            exp.add("sales", "moved_out")
            exp.add("support", "offered")
            queue = "support"
        wait_s = rng.randint(3, 60)
        agent = rng.choice(AGENTS)
        if i < n // 3 and rng.random() < 0.3:  # an offer nobody answers (times out at +20 s)
            other = next(a for a in AGENTS if a != agent)
            step(t0 + 3, "offer", cid, other)
            step(t0 + 3 + 21, "expired", cid)
            exp.add(queue, "offers_created")
            exp.add(queue, "offers_timed_out")
            exp.agent(other, "offers_timed_out")
            wait_s = max(wait_s, 30)
        elif rng.random() < 0.25:  # declined first, then answered by another agent
            other = next(a for a in AGENTS if a != agent)
            step(t0 + wait_s, "offer", cid, other)
            step(t0 + wait_s, "decline", cid, other)
            exp.add(queue, "offers_created")
            exp.add(queue, "offers_declined")
            exp.agent(other, "offers_declined")
        step(t0 + wait_s, "offer", cid, agent)
        step(t0 + wait_s, "accept", cid, agent)
        handle_s = rng.randint(20, 200)
        step(t0 + wait_s + handle_s, "end", cid, agent)
        exp.add(queue, "offers_created")
        exp.add(queue, "offers_accepted")
        exp.add(queue, "answered")
        exp.add(queue, "answered_in_sl", int(wait_s * 1000 <= T[queue]))
        exp.add(queue, "wait_ms_total", wait_s * 1000)
        exp.add(queue, "handled")
        exp.add(queue, "handle_ms_total", handle_s * 1000)
        exp.agent(agent, "offers_accepted")
        exp.agent(agent, "handled")
        busy.setdefault(agent, []).append((t0 + wait_s, t0 + wait_s + handle_s))
    for agent, spans in busy.items():  # busy = at least one chat open (overlaps count once)
        merged: list[list[int]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        exp.agent(agent, "busy_ms", sum(b - a for a, b in merged) * 1000)
    return sorted(steps), exp


async def play(engine: RoutingEngine, clock: ManualClock, start: int, steps: list[Step]) -> None:
    offers: dict[str, str] = {}
    for s in steps:
        target = start + s.at_s * 1000
        if target > clock.now_ms():
            clock.advance((target - clock.now_ms()) / 1000)
        match s.kind:
            case "enqueue":
                await engine.enqueue("sales", contact_id=s.contact, priority=s.arg)
            case "cancel":
                await engine.cancel(s.contact)
            case "move":
                await engine.move_contact(s.contact, s.arg)
            case "offer":
                view = await engine.force_offer(s.contact, s.arg)
                offers[s.contact] = view.offer_id or ""
            case "decline":
                await engine.decline(offers[s.contact], s.arg)
            case "expired":  # the sweeper expires it once the clock is past the deadline
                deadline = asyncio.get_running_loop().time() + 5
                while (await engine.contact(s.contact)).state != "queued":
                    assert asyncio.get_running_loop().time() < deadline, s
                    await asyncio.sleep(0.02)
            case "accept":
                await engine.accept(offers[s.contact], s.arg)
            case "end":
                await engine.end(s.contact, agent_id=s.arg)


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Every path where two JSON values differ (readable failures)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _counts(stats: dict[str, Any], keys: set[str]) -> dict[str, int]:
    return {k: stats[k] for k in keys if stats.get(k)}


async def test_scripted_traffic_live_view_report_and_prometheus_agree(
    make_floor: MakeFloor,  # noqa: F811
) -> None:
    clock = ManualClock()
    floor = await make_floor(clock=clock)
    engine = floor.app[ENGINE]
    start = clock.now_ms()
    for a in AGENTS:
        await engine.login(a, queues=["sales", "support"], capacity={"chat": 20}, state="away")
    steps, exp = script(SEED, 60)
    await play(engine, clock, start, steps)
    clock.advance(60)
    sup = await floor.supervisor("sup")
    await floor.app[MONITOR].recorder.flush()

    # 1. the live view (REST) shows what the script did, today and in the last 60 minutes
    status, live = await floor.call("GET", "/api/v1/monitor", "sup")
    assert status == 200
    by_queue = {q["queue_id"]: q for q in live["queues"]}
    for queue, expected in exp.q.items():
        expected = {k: v for k, v in expected.items() if k != "x" and v}
        for window in ("today", "60m"):
            got = _counts(by_queue[queue]["stats"][window], set(expected))
            assert got == expected, (queue, window)
    sales = by_queue["sales"]["stats"]["today"]
    answered = exp.q["sales"]["answered"]
    assert sales["service_level"] == exp.q["sales"]["answered_in_sl"] / answered
    assert sales["asa_s"] == exp.q["sales"]["wait_ms_total"] / answered / 1000
    sl2_den = answered + exp.q["sales"]["abandoned"] - exp.q["sales"].get("abandoned_short", 0)
    sl2_num = exp.q["sales"]["answered_in_sl"] + exp.q["sales"].get("abandoned_in_sl", 0)
    assert sales["service_level2"] == sl2_num / sl2_den
    assert sales["aht_s"] == exp.q["sales"]["handle_ms_total"] / exp.q["sales"]["handled"] / 1000
    # every contact is accounted for: offered = answered + abandoned + moved out (+ waiting)
    assert sales["offered"] == sales["answered"] + sales["abandoned"] + sales["moved_out"]
    agents = {a["agent_id"]: a for a in live["agents"]}
    for agent, expected in exp.agents.items():
        stats = agents[agent]["stats"]["today"]
        assert _counts(stats, set(expected)) == expected, agent
        # away all day (logged in away at the start): time in state is the whole time
        assert stats["time_in_state_ms"]["away"] == clock.now_ms() - start
        assert agents[agent]["state"] == "away"

    # 2. the socket pushes the same view
    def same_stats(d: dict[str, Any]) -> bool:
        return not _diff(
            {q["queue_id"]: q["stats"] for q in d["queues"]},
            {q["queue_id"]: q["stats"] for q in live["queues"]},
        )

    await sup.wait("snapshot", same_stats)

    # 3. the day's report says exactly the same, and its hours add up to the day
    day = datetime.fromtimestamp(start / 1000, ZoneInfo("Asia/Shanghai")).date().isoformat()
    status, report = await floor.call(
        "GET", f"/api/v1/reports/queues?from={day}&to={day}&group=total", "sup"
    )
    assert status == 200
    for row in report["queues"]:
        live_stats = by_queue[row["queue_id"]]["stats"]["today"]
        assert {k: row[k] for k in live_stats} == live_stats, row["queue_id"]
    status, hourly = await floor.call(
        "GET", f"/api/v1/reports/queues?from={day}&to={day}&group=hour", "sup"
    )
    assert len(hourly["queues"]) == 24 * 3
    for queue in ("sales", "support"):
        rows = [r for r in hourly["queues"] if r["queue_id"] == queue]
        for key in ("offered", "answered", "abandoned", "handle_ms_total", "offers_declined"):
            assert sum(r[key] for r in rows) == by_queue[queue]["stats"]["today"][key]
    status, agent_report = await floor.call(
        "GET", f"/api/v1/reports/agents?from={day}&to={day}&group=total", "sup"
    )
    for row in agent_report["agents"]:
        assert row["stats"] == agents[row["agent_id"]]["stats"]["today"], row["agent_id"]

    # 4. Prometheus counts the same events the same way
    m = await floor.metrics()

    def metric(name: str, **labels: str) -> float:
        return m.get((name, tuple(sorted(labels.items()))), 0.0)

    for queue in ("sales", "support"):
        s = by_queue[queue]["stats"]["today"]
        assert metric("contactd_contacts_offered_total", queue=queue) == s["offered"]
        in_sl = metric("contactd_contacts_answered_total", queue=queue, within_sl="true")
        late = metric("contactd_contacts_answered_total", queue=queue, within_sl="false")
        assert (in_sl, in_sl + late) == (s["answered_in_sl"], s["answered"])
        assert (
            metric("contactd_contacts_abandoned_total", queue=queue, kind="short")
            == (s["abandoned_short"])
        )
        assert (
            metric("contactd_contacts_abandoned_total", queue=queue, kind="in_sl")
            == (s["abandoned_in_sl"])
        )
        for outcome, key in (
            ("created", "offers_created"),
            ("accepted", "offers_accepted"),
            ("declined", "offers_declined"),
            ("expired", "offers_timed_out"),
        ):
            assert metric("contactd_offers_total", queue=queue, outcome=outcome) == s[key]
        assert metric("contactd_handle_seconds_sum", queue=queue) == s["handle_ms_total"] / 1000
    assert metric("contactd_agents", state="away") == len(AGENTS)


async def test_windows_count_only_what_happened_in_them(make_floor: MakeFloor) -> None:  # noqa: F811
    clock = ManualClock()
    floor = await make_floor(clock=clock)
    engine = floor.app[ENGINE]
    await engine.enqueue("sales", contact_id="old")
    await engine.cancel("old")  # abandoned at once: a short abandon
    clock.advance(45 * 60)
    await engine.enqueue("sales", contact_id="mid")
    clock.advance(20)
    await engine.cancel("mid")  # abandoned after 20 s: within T (20 s, inclusive)
    clock.advance(20 * 60)
    await engine.enqueue("sales", contact_id="new")
    await floor.app[MONITOR].recorder.flush()
    snap = (await floor.app[MONITOR].live.snapshot()).model_dump()
    stats = {w: snap["queues"][0]["stats"][w] for w in ("15m", "60m", "today")}
    assert [stats[w]["offered"] for w in ("15m", "60m", "today")] == [1, 2, 3]
    assert [stats[w]["abandoned"] for w in ("15m", "60m", "today")] == [0, 1, 2]
    assert stats["today"]["abandoned_short"] == 1 and stats["today"]["abandoned_in_sl"] == 1
    assert stats["today"]["service_level"] is None  # nothing answered: no SL, not 0 or 100 %
    assert stats["today"]["service_level2"] == 1.0  # one abandon within T, the short left out
    queue = snap["queues"][0]
    assert queue["waiting"] == 1 and queue["waiting_list"][0]["contact_id"] == "new"


async def test_alert_lines_per_queue(make_floor: MakeFloor) -> None:  # noqa: F811
    clock = ManualClock()
    floor = await make_floor(
        clock=clock,
        monitor={
            "alerts": {"longest_wait_s": 600, "service_level": 0.9},
            "queue_alerts": {"support": {"longest_wait_s": 10, "service_level": 0.5}},
        },
    )
    engine = floor.app[ENGINE]
    await engine.login("a1", queues=["sales"], state="away")
    await engine.enqueue("sales", contact_id="late")
    clock.advance(30)  # answered after 30 s: over T = 20 s, SL 0 %
    offer = await engine.force_offer("late", "a1")
    await engine.accept(offer.offer_id or "", "a1")
    await engine.enqueue("support", contact_id="waits")
    clock.advance(11)  # over support's own line of 10 s
    await floor.app[MONITOR].recorder.flush()
    snap = await floor.app[MONITOR].live.snapshot()
    alerts = {q.queue_id: q.alerts for q in snap.queues}
    assert alerts == {"sales": ["service_level"], "support": ["longest_wait"], "phone": []}
