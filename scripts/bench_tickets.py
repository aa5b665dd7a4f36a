"""Benchmark the after-sales ticket write path against the bare SQL it stands on.

One "case" is the life of a complaint ticket: create (the customer looked up in the
embedded directory), claim, start processing, resolve. contactd does each step as one
write transaction that reads the ticket, checks the state machine and ownership, updates
it conditionally on its version, appends a timeline node and an audit entry with
before/after snapshots, then publishes an event. The *bare* baseline, in the same run and
database, does the least SQL that still changes the same rows the same way: one INSERT and
three conditional UPDATEs, no directory, no timeline, no audit, no checks.

Also timed: reading the pools (counts and age per queue) and one pool's tickets with many
tickets waiting, which the desk polls.

    .venv/bin/python scripts/bench_tickets.py            # full run
    .venv/bin/python scripts/bench_tickets.py --quick    # under 45 s
    .venv/bin/python scripts/bench_tickets.py --json     # one JSON object on stdout
    .venv/bin/python scripts/bench_tickets.py --database-url postgresql+asyncpg://...

With ``--database-url`` the script works in a fresh schema (PostgreSQL) that it drops at
the end; without it, a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import (
    format_table,
    latency_summary_ms,
    machine_info,
    peak_rss_mib,
    print_json,
    progress_line,
)

from contactd.auth.audit import AuditLog
from contactd.auth.models import Principal
from contactd.bus import Bus
from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_models import Actor, TicketDraft
from contactd.cases.tickets_service import TicketService
from contactd.clock import SystemClock
from contactd.directory.demo import seed_demo_directory
from contactd.directory.embedded import EmbeddedDirectory
from contactd.settings import load_settings
from contactd.storage.db import migrate, open_database, write_transaction
from contactd.storage.tables import tickets

STEPS = 4  # create, claim, start_processing, resolve


def actor(n: int) -> Actor:
    name = f"agent{n}"
    who = Principal(kind="staff", id=str(n), name=name, role="agent")
    return Actor(kind="staff", id=name, name=name, principal=who)


async def contactd_case(svc: TicketService, worker: int, customer: str, lat: list[int]) -> None:
    me = actor(worker)
    t0 = time.perf_counter_ns()
    draft = TicketDraft(type=TicketType.complaint, customer_id=customer, reason="bench")
    tid = (await svc.create(me, draft)).ticket.id
    await svc.claim(me, tid)
    await svc.act(me, tid, "start_processing")
    await svc.act(me, tid, "resolve")
    lat.append(time.perf_counter_ns() - t0)


async def bare_case(engine: AsyncEngine, worker: int, customer: str, lat: list[int]) -> None:
    t0 = time.perf_counter_ns()
    now = int(time.time() * 1000)
    tid = "B" + secrets.token_hex(8)
    async with write_transaction(engine) as conn:
        await conn.execute(
            sa.insert(tickets).values(
                id=tid,
                version=1,
                type="complaint",
                state="pending_review",
                priority=0,
                queue_id="presales",
                customer_id=customer,
                items=[],
                attachments=[],
                amount=0,
                reason="bench",
                urges=0,
                created_by="bench",
                created_at=now,
                updated_at=now,
            )
        )
    for version, values in enumerate(
        (
            {"owner_id": f"agent{worker}", "claimed_at": now},
            {"state": "processing"},
            {"state": "resolved", "closed_at": now},
        ),
        start=1,
    ):
        async with write_transaction(engine) as conn:
            await conn.execute(
                sa.update(tickets)
                .where(tickets.c.id == tid, tickets.c.version == version)
                .values(version=version + 1, updated_at=now, **values)
            )
    lat.append(time.perf_counter_ns() - t0)


async def drive(fn: Any, cases: int, concurrency: int, customers: list[str]) -> dict[str, Any]:
    lat: list[int] = []
    todo = iter(range(cases))

    async def worker(w: int) -> None:
        for i in todo:
            await fn(w, customers[i % len(customers)], lat)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - t0
    return {
        "cases": cases,
        "cases_per_s": round(cases / wall, 1),
        "writes_per_s": round(cases * STEPS / wall, 1),
        **{f"case_{k}": v for k, v in latency_summary_ms(lat).items()},
    }


async def pool_reads(svc: TicketService, open_tickets: int, reads: int) -> dict[str, Any]:
    me = actor(0)
    for i in range(open_tickets):
        draft = TicketDraft(
            type=TicketType.complaint, reason="waiting", priority=i % 10, queue_id="aftersales"
        )
        await svc.create(me, draft)
    pools_ns: list[int] = []
    list_ns: list[int] = []
    for _ in range(reads):
        t0 = time.perf_counter_ns()
        await svc.pools()
        pools_ns.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        await svc.search(queue_id="aftersales", pool=True, limit=200)
        list_ns.append(time.perf_counter_ns() - t0)
    return {
        "open_tickets": open_tickets,
        "pools": latency_summary_ms(pools_ns),
        "pool_list_200": latency_summary_ms(list_ns),
    }


async def open_engine(url: str | None, tmp: Path) -> tuple[AsyncEngine, Any]:
    if url is None:
        engine = await open_database(f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}")
        return engine, None
    schema = "bench_" + secrets.token_hex(6)
    admin = await open_database(url)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = await open_database(url, connect_args={"server_settings": {"search_path": schema}})

    async def drop() -> None:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()

    return engine, drop


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = args.cases or (300 if args.quick else 2000)
    with tempfile.TemporaryDirectory(prefix="contactd-bench-") as tmp:
        engine, drop = await open_engine(args.database_url, Path(tmp))
        try:
            await migrate(engine)
            progress_line("seeding the demo directory")
            await seed_demo_directory(engine, customers=200)
            customers = [f"u{1001 + i}" for i in range(200)]
            settings = load_settings(None, argon2_time_cost=1, argon2_memory_kib=1024)
            clock = SystemClock()

            async def staff(_username: str) -> tuple[str, frozenset[str]]:
                return "Agent", frozenset({"tickets.handle"})

            svc = TicketService(
                engine,
                settings,
                clock,
                Bus(),
                AuditLog(engine, clock),
                EmbeddedDirectory(engine),
                staff,
            )
            out: dict[str, Any] = {"backend": engine.dialect.name, "concurrency": args.concurrency}
            # warm both paths, then alternate so neither gets a warmer cache
            await drive(lambda w, c, lat: contactd_case(svc, w, c, lat), 20, 4, customers)
            await drive(lambda w, c, lat: bare_case(engine, w, c, lat), 20, 4, customers)
            progress_line(f"{cases} cases through contactd")
            out["contactd"] = await drive(
                lambda w, c, lat: contactd_case(svc, w, c, lat), cases, args.concurrency, customers
            )
            progress_line(f"{cases} cases through bare SQL")
            out["bare"] = await drive(
                lambda w, c, lat: bare_case(engine, w, c, lat), cases, args.concurrency, customers
            )
            out["ratio"] = round(out["contactd"]["cases_per_s"] / out["bare"]["cases_per_s"], 3)
            progress_line("pool reads")
            out["pool_reads"] = await pool_reads(
                svc, 500 if args.quick else 5000, 50 if args.quick else 200
            )
            out["peak_rss_mib"] = round(peak_rss_mib(), 1)
            out["machine"] = machine_info()
            return out
        finally:
            await engine.dispose()
            if drop is not None:
                await drop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases (under 45 s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--cases", type=int, help="cases per path (2000; 300 with --quick)")
    ap.add_argument("--concurrency", type=int, default=16, help="cases in flight (16)")
    ap.add_argument("--database-url", help="PostgreSQL URL (default: a temporary SQLite file)")
    args = ap.parse_args(argv)
    out = asyncio.run(run(args))
    if args.json:
        print_json(out)
        return
    rows = [
        (
            name,
            out[name]["cases_per_s"],
            out[name]["writes_per_s"],
            out[name]["case_p50_ms"],
            out[name]["case_p99_ms"],
        )
        for name in ("contactd", "bare")
    ]
    print(f"backend {out['backend']}, concurrency {out['concurrency']}")
    print(format_table(("path", "cases/s", "writes/s", "p50 ms", "p99 ms"), rows))
    print(f"ratio contactd / bare: {out['ratio']}")
    pr = out["pool_reads"]
    print(
        f"with {pr['open_tickets']} open tickets: pools p50 {pr['pools']['p50_ms']} ms "
        f"p99 {pr['pools']['p99_ms']} ms; a pool's 200 tickets p50 "
        f"{pr['pool_list_200']['p50_ms']} ms p99 {pr['pool_list_200']['p99_ms']} ms"
    )
    print(f"peak RSS {out['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
