"""How much a live-monitor refresh costs, against the bare stack.

A day of synthetic routing events (``--contacts`` contacts, ~6 rows each, 3 queues, 20
agents) is written to a fresh SQLite database with the monitor's own recorder. Then:

* ``contactd cold``: what a refresh costs without the cache: read the day's rows and
  compute every metric of docs/metrics.md for the three live windows (per queue and agent).
* ``contactd warm``: the live monitor's steady state: the cache tops up by id (10 new
  events), then the same computation.
* ``bare SQL``: one GROUP BY query per refresh counting offered / answered / answered
  within T / abandoned per queue for the day — what a "SQL count per request" live view
  does, with far fewer metrics.

Prints each figure (ms per refresh, median of ``--repeat``) and the ratio warm ÷ bare.
``--quick`` (a small day, under 45 s) and ``--json`` (one object on stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench_common import machine_info, peak_rss_mib, print_json, progress_line

from contactd.monitor.definitions import Rules, compute
from contactd.monitor.store import EventCache, EventRecorder, MonitorRepository
from contactd.monitor.windows import live_windows
from contactd.routing import events as ev
from contactd.storage.db import migrate, open_database
from contactd.storage.tables import monitor_events

QUEUES = ("presales", "aftersales", "vip")
AGENTS = [f"agent{i}" for i in range(20)]
RULES = Rules(service_level_ms=dict.fromkeys(QUEUES, 20_000), short_abandon_ms=5_000)
DAY_START = 1_795_000_000_000 - 16 * 3_600_000
NOW = DAY_START + 23 * 3_600_000


def synthetic_day(contacts: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    for a in AGENTS:
        out.append(
            ev.AgentStateChanged(
                type="agent.state_changed",
                at=DAY_START,
                agent_id=a,
                state="available",
                reason="",
                previous="offline",
            )
        )
    for i in range(contacts):
        t0 = DAY_START + int(i * (NOW - DAY_START - 600_000) / contacts)
        cid, q, a = f"c{i}", rng.choice(QUEUES), rng.choice(AGENTS)
        out.append(
            ev.ContactEnqueued(
                type="contact.enqueued",
                at=t0,
                contact_id=cid,
                queue_id=q,
                channel="chat",
                priority=0,
            )
        )
        wait = rng.randint(1, 60_000)
        if rng.random() < 0.15:
            out.append(
                ev.ContactAbandoned(
                    type="contact.abandoned",
                    at=t0 + wait,
                    contact_id=cid,
                    queue_id=q,
                    reason="customer_left",
                    waited_ms=wait,
                    was="queued",
                )
            )
            continue
        offer = dict(offer_id=f"{cid}~1", contact_id=cid, agent_id=a, queue_id=q, channel="chat")
        out.append(
            ev.OfferCreated(
                type="offer.created",
                at=t0 + wait,
                priority=0,
                deadline=t0 + wait + 20_000,
                waited_ms=wait,
                attempt=1,
                **offer,
            )
        )
        out.append(
            ev.OfferAccepted(
                type="offer.accepted", at=t0 + wait + 3_000, waited_ms=wait + 3_000, **offer
            )
        )
        handle = rng.randint(30_000, 400_000)
        end = t0 + wait + 3_000 + handle
        out.append(
            ev.ContactEnded(
                type="contact.ended",
                at=end,
                contact_id=cid,
                queue_id=q,
                agent_id=a,
                reason="resolved",
                handle_ms=handle,
                wrap_up_ms=10_000,
            )
        )
        out.append(
            ev.WrapUpEnded(
                type="wrap_up.ended", at=end + 8_000, contact_id=cid, agent_id=a, expired=False
            )
        )
    return out


def bare_query(since: int) -> Any:
    t = monitor_events
    return (
        sa.select(
            t.c.queue_id,
            sa.func.sum(sa.case((t.c.type == "contact.enqueued", 1), else_=0)),
            sa.func.sum(sa.case((t.c.type == "offer.accepted", 1), else_=0)),
            sa.func.sum(
                sa.case(((t.c.type == "offer.accepted") & (t.c.value_ms <= 20_000), 1), else_=0)
            ),
            sa.func.sum(sa.case((t.c.type == "contact.abandoned", 1), else_=0)),
        )
        .where(t.c.at >= since)
        .group_by(t.c.queue_id)
    )


async def timed(repeat: int, fn: Any) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="contactd-bench-monitor-") as tmp:
        db = await open_database(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3")
        await migrate(db)
        recorder = EventRecorder(db)
        events = synthetic_day(args.contacts, args.seed)
        progress_line(f"writing {len(events)} events")
        started = time.perf_counter()
        for e in events:
            recorder.on_event(e)
        await recorder.flush()
        write_s = time.perf_counter() - started
        repo = MonitorRepository(db)
        from zoneinfo import ZoneInfo

        windows = live_windows(NOW, ZoneInfo("Asia/Shanghai"))
        day = windows["today"]

        async def cold() -> None:
            rows = await repo.rows(day.start, day.end)
            compute(rows, list(windows.values()), RULES, NOW)

        cache = EventCache(repo)
        await cache.rows(day.start - 12 * 3_600_000, NOW)
        extra = iter(synthetic_day(10 * args.repeat * 2, args.seed + 1))

        async def warm() -> None:
            for _ in range(10):
                recorder.on_event(next(extra))
            await recorder.flush()
            rows = await cache.rows(day.start - 12 * 3_600_000, NOW)
            compute(rows, list(windows.values()), RULES, NOW)

        async def bare() -> None:
            async with db.connect() as conn:
                (await conn.execute(bare_query(day.start))).all()

        progress_line("timing")
        result = {
            "events": len(events),
            "write_events_per_s": round(len(events) / write_s),
            "contactd_cold_ms": round(await timed(args.repeat, cold), 1),
            "contactd_warm_ms": round(await timed(args.repeat, warm), 1),
            "bare_sql_ms": round(await timed(args.repeat, bare), 1),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "machine": machine_info(),
        }
        result["ratio_warm_to_bare"] = round(result["contactd_warm_ms"] / result["bare_sql_ms"], 2)
        await db.dispose()
        return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--contacts", type=int, default=20_000, help="contacts in the day")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="2,000 contacts, 3 repeats")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.contacts, args.repeat = 2_000, 3
    r = asyncio.run(run(args))
    if args.json:
        print_json(r)
        return
    print(f"events in the day        {r['events']}  (written at {r['write_events_per_s']}/s)")
    print(f"contactd refresh, cold   {r['contactd_cold_ms']} ms  (read the day + every metric)")
    print(f"contactd refresh, warm   {r['contactd_warm_ms']} ms  (cache top-up + every metric)")
    print(f"bare SQL GROUP BY        {r['bare_sql_ms']} ms  (4 counts per queue)")
    print(f"ratio warm / bare        {r['ratio_warm_to_bare']}")


if __name__ == "__main__":
    main()
