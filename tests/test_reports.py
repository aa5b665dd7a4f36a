"""Reports over REST and CSV: from persisted events (they survive Redis losing everything),
by hour and day in the configured timezone, scoped like the monitor, bad queries refused."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from contactd.clock import ManualClock
from contactd.keys import ENGINE, MONITOR, REDIS
from tests.monitor_helpers import MakeFloor, floor_guard, make_floor  # noqa: F401  (fixtures)

TZ = ZoneInfo("Asia/Shanghai")
# 23:50 local on 2026-11-20: traffic runs across local midnight
START = int(datetime(2026, 11, 20, 23, 50, tzinfo=TZ).timestamp() * 1000)


async def _traffic(floor, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    engine = floor.app[ENGINE]
    await engine.login("a1", queues=["sales", "support"], state="away")
    await engine.login("a3", queues=["support"], state="away")
    for i, (queue, agent, wait_s, handle_s) in enumerate(
        [("sales", "a1", 10, 60), ("sales", "a1", 25, 30), ("support", "a3", 5, 90)]
    ):
        await engine.enqueue(queue, contact_id=f"r{i}")
        clock.advance(wait_s)
        offer = await engine.force_offer(f"r{i}", agent)
        await engine.accept(offer.offer_id or "", agent)
        clock.advance(handle_s)
        await engine.end(f"r{i}", agent_id=agent)
        clock.advance(240)  # the third contact arrives after midnight
    await engine.enqueue("sales", contact_id="gone")
    clock.advance(3)
    await engine.cancel("gone")
    await floor.app[MONITOR].recorder.flush()


async def test_reports_by_day_and_hour_and_csv_from_persisted_events(
    make_floor: MakeFloor,  # noqa: F811
) -> None:
    clock = ManualClock(START)
    floor = await make_floor(clock=clock)
    await _traffic(floor, clock)
    # Redis forgets everything (a flush, a failover): reports come from the database
    pattern = floor.app[ENGINE].keys.base + "*"
    keys = [k async for k in floor.app[REDIS].scan_iter(match=pattern)]
    if keys:
        await floor.app[REDIS].delete(*keys)

    q = "/api/v1/reports/queues?from=2026-11-20&to=2026-11-21"
    status, by_day = await floor.call("GET", q, "sup")
    assert status == 200 and by_day["timezone"] == "Asia/Shanghai"
    rows = {(r["period"], r["queue_id"]): r for r in by_day["queues"]}
    # 23:50 and 23:55 in sales (waits 10 s and 25 s: one within T = 20 s), then after
    # midnight one in support and one abandoned in sales after 3 s (a short abandon)
    day1 = rows[("2026-11-20", "sales")]
    assert (day1["offered"], day1["answered"], day1["answered_in_sl"]) == (2, 2, 1)
    assert day1["service_level"] == 0.5 and day1["asa_s"] == 17.5
    day2 = rows[("2026-11-21", "sales")]
    assert (day2["offered"], day2["answered"], day2["abandoned"]) == (1, 0, 1)
    assert day2["abandoned_short"] == 1 and day2["service_level2"] is None
    assert rows[("2026-11-21", "support")]["answered"] == 1
    total = sum(r["offered"] for r in by_day["queues"])
    assert total == 4

    status, hourly = await floor.call(
        "GET", "/api/v1/reports/queues?from=2026-11-20&to=2026-11-21&group=hour", "sup"
    )
    assert status == 200 and len(hourly["queues"]) == 48 * 3
    busy_hours = {r["period"] for r in hourly["queues"] if r["offered"]}
    assert busy_hours == {"2026-11-20T23:00+08:00", "2026-11-21T00:00+08:00"}

    status, text = await floor.call("GET", q + "&format=csv", "sup")
    assert status == 200
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 2 * 3
    sales_day1 = next(r for r in table if r["period"] == "2026-11-20" and r["queue_id"] == "sales")
    assert sales_day1["answered"] == "2" and sales_day1["service_level"] == "0.5000"
    assert sales_day1["asa_s"] == "17.5000"

    status, text = await floor.call(
        "GET", "/api/v1/reports/agents?from=2026-11-20&to=2026-11-21&group=total&format=csv", "sup"
    )
    agents = {r["agent_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert agents["a1"]["handled"] == "2" and agents["a3"]["handled"] == "1"
    assert agents["a1"]["handle_ms_total"] == str((60 + 30) * 1000)
    assert int(agents["a1"]["away_ms"]) == clock.now_ms() - START


async def test_report_scope_permissions_and_bad_queries(make_floor: MakeFloor) -> None:  # noqa: F811
    clock = ManualClock(START)
    floor = await make_floor(clock=clock)
    await _traffic(floor, clock)
    base = "/api/v1/reports/queues?from=2026-11-20&to=2026-11-21"
    status, lead = await floor.call("GET", base, "lead")
    assert status == 200 and {r["queue_id"] for r in lead["queues"]} == {"support"}
    status, lead_agents = await floor.call(
        "GET", "/api/v1/reports/agents?from=2026-11-20&to=2026-11-21", "lead"
    )
    assert {r["agent_id"] for r in lead_agents["agents"]} == {"a3"}
    day = datetime.fromtimestamp(START / 1000, TZ).date()
    cases = {
        "agent": ("a1", base, 403),
        "no dates": ("sup", "/api/v1/reports/queues", 422),
        "bad date": ("sup", "/api/v1/reports/queues?from=2026-13-01&to=2026-13-02", 422),
        "backwards": ("sup", "/api/v1/reports/queues?from=2026-11-21&to=2026-11-20", 422),
        "unknown group": ("sup", base + "&group=week", 422),
        "unknown param": ("sup", base + "&queue=sales", 422),
        "too long hourly": (
            "sup",
            f"/api/v1/reports/queues?from={day}&to={day + timedelta(days=40)}&group=hour",
            422,
        ),
    }
    got = {}
    for name, (who, path, _) in cases.items():
        status, body = await floor.call("GET", path, who)
        got[name] = status
        assert body["error"]["message"], name
    assert got == {name: code for name, (_, _, code) in cases.items()}
