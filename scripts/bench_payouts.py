"""Compensation benchmark: reviews and exactly-once payouts per second, against the bare SQL
the same work needs.

contactd's path, per order:

* **approve** (``CompensationService.approve``): read the order, check visibility, version,
  the transition, the approval flow, maker-checker and the amount limit; the versioned
  UPDATE; the payout row (its id fixed now); the audit entry; the outbox rows; the bus
  events — one transaction;
* **payout** (``PayoutWorker.run_once``): claim due payouts under a lease, call the ledger
  connector (an idempotent double-entry posting with the never-negative check), record the
  payout and mark the order paid (versioned UPDATE, audit, outbox, events).

The bare baseline does the minimum SQL with the same outcome on the same database, the same
number in flight: approve = one ``UPDATE ... WHERE version`` plus one payout INSERT; payout
= one transaction inserting the ledger transaction and its two entries, updating the two
balances and marking the order paid. No checks, no audit, no outbox, no leases.

Reported: approvals/s and payouts/s for both, and the ratios (contactd ÷ bare). SQLite in a
temporary directory by default; ``--database-url postgresql+asyncpg://...`` for PostgreSQL
(a fresh database is created and dropped).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _bench_common import closed_loop, machine_info, print_json, progress_line  # noqa: E402

from contactd.auth.audit import AuditLog  # noqa: E402
from contactd.auth.models import AuditContext, Principal  # noqa: E402
from contactd.bus import Bus  # noqa: E402
from contactd.cases.compensation_app import compensation_running  # noqa: E402
from contactd.cases.compensation_models import CompensationCreate  # noqa: E402
from contactd.clock import SystemClock  # noqa: E402
from contactd.directory.embedded import EmbeddedDirectory  # noqa: E402
from contactd.directory.models import Customer, Order, OrderItem, OrderStatus  # noqa: E402
from contactd.settings import load_settings  # noqa: E402
from contactd.storage.db import migrate, open_database, write_transaction  # noqa: E402
from contactd.storage.tables import (  # noqa: E402
    compensations,
    ledger_accounts,
    ledger_entries,
    ledger_txns,
    payouts,
)


def staff(settings: Any, name: str, role: str, sid: int) -> AuditContext:
    who = Principal(
        kind="staff", id=str(sid), name=name, role=role, permissions=settings.permissions_of(role)
    )
    return AuditContext(actor=who)


async def seed(engine: Any, customers: int) -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 1, tzinfo=UTC)
    people = [
        Customer(id=f"b{i}", name=f"客户{i}", phone=f"139{i:08d}", registered_at=when)
        for i in range(customers)
    ]
    line = OrderItem(sku="SKU-1", name="Mug", qty=1, unit_price=100_000, amount=100_000)
    orders = [
        Order(
            order_no=f"OB{i:08d}",
            customer_id=p.id,
            status=OrderStatus.delivered,
            items=(line,),
            total=100_000,
            created_at=when,
        )
        for i, p in enumerate(people)
    ]
    await EmbeddedDirectory(engine).add(customers=people, orders=orders)


async def bare_approve(engine: Any, order_id: str, version: int, now: int) -> None:
    c = compensations.c
    async with write_transaction(engine) as conn:
        await conn.execute(
            sa.update(compensations)
            .where(c.id == order_id, c.version == version)
            .values(status="approved", version=version + 1, payout_id="bp" + order_id)
        )
        await conn.execute(
            sa.insert(payouts).values(
                id="bp" + order_id,
                compensation_id=order_id,
                asset_type="balance",
                amount=5_000,
                account="bare",
                connector="embedded",
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


async def bare_payout(engine: Any, order_id: str, owner: str, now: int) -> None:
    a = ledger_accounts.c
    async with write_transaction(engine) as conn:
        txn = (
            await conn.execute(
                sa.insert(ledger_txns)
                .values(ref="bp" + order_id, kind="credit", memo="", created_at=now)
                .returning(ledger_txns.c.id)
            )
        ).scalar_one()
        for account, delta in (("sys:bare", -5_000), (f"bare:{owner}", 5_000)):
            await conn.execute(
                sa.update(ledger_accounts).where(a.id == account).values(balance=a.balance + delta)
            )
            await conn.execute(
                sa.insert(ledger_entries).values(
                    txn_id=txn, account_id=account, amount=delta, created_at=now
                )
            )
        await conn.execute(
            sa.update(compensations)
            .where(compensations.c.id == order_id)
            .values(status="paid", payout_state="succeeded")
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.orders
    with tempfile.TemporaryDirectory(prefix="contactd-bench-") as tmp:
        url, drop = args.database_url, None
        if url is None:
            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        elif url.startswith("postgresql"):
            name = "contactd_bench_" + secrets.token_hex(4)
            admin = await open_database(url)
            auto = admin.execution_options(isolation_level="AUTOCOMMIT")
            async with auto.connect() as conn:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.make_url(url).set(database=name).render_as_string(hide_password=False)
            drop = (admin, auto, name)
        engine = await open_database(url)
        try:
            await migrate(engine)
            return await measure(engine, n, args.concurrency, url)
        finally:
            await engine.dispose()
            if drop is not None:
                admin, auto, name = drop
                async with auto.connect() as conn:
                    await conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                await admin.dispose()


async def measure(engine: Any, n: int, concurrency: int, url: str) -> dict[str, Any]:
    settings = load_settings(None, site="bench", compensation={"payout": {"poll_s": 60}})
    clock = SystemClock()
    customers = 50
    await seed(engine, customers)
    agent = staff(settings, "agent1", "agent", 1)
    reviewer = staff(settings, "review1", "reviewer", 2)
    async with compensation_running(
        settings,
        engine,
        clock,
        Bus(),
        AuditLog(engine, clock),
        EmbeddedDirectory(engine),
        workers=False,
    ) as comp:
        progress_line(f"creating {2 * n} orders")
        created = []
        for i in range(2 * n):
            body = CompensationCreate(
                customer_phone=f"139{i % customers:08d}",
                order_no=f"OB{i % customers:08d}",
                scene="defect",
                asset_type="balance",
                amount=5_000,
                reason="bench",
            )
            created.append(await comp.service.create(body, agent))
        ours, bare = created[:n], created[n:]

        progress_line("contactd: approvals")
        todo = iter(ours)
        approve_s = await closed_loop(
            lambda: comp.service.approve((o := next(todo)).id, o.version, reviewer), n, concurrency
        )
        progress_line("contactd: payouts")
        start = time.perf_counter()
        paid = 0
        while paid < n:
            paid += await comp.payouts.run_once()
        payout_s = time.perf_counter() - start
        rec = await comp.ledger.reconcile()

    progress_line("bare: approvals and payouts")
    now = clock.now_ms()
    async with write_transaction(engine) as conn:
        rows = [
            {
                "id": "sys:bare",
                "owner": "bare",
                "kind": "system",
                "balance": 0,
                "allow_negative": True,
                "created_at": now,
            }
        ] + [
            {
                "id": f"bare:b{i}",
                "owner": f"b{i}",
                "kind": "available",
                "balance": 0,
                "allow_negative": False,
                "created_at": now,
            }
            for i in range(customers)
        ]
        await conn.execute(sa.insert(ledger_accounts), rows)
    todo_b = iter(bare)
    bare_approve_s = await closed_loop(
        lambda: bare_approve(engine, (o := next(todo_b)).id, o.version, now), n, concurrency
    )
    todo_p = iter(bare)
    bare_payout_s = await closed_loop(
        lambda: bare_payout(engine, (o := next(todo_p)).id, str(o.customer_id), now),
        n,
        concurrency,
    )
    figures = {
        "approvals_per_s": round(n / approve_s, 1),
        "bare_approvals_per_s": round(n / bare_approve_s, 1),
        "payouts_per_s": round(n / payout_s, 1),
        "bare_payouts_per_s": round(n / bare_payout_s, 1),
    }
    return {
        "benchmark": "payouts",
        "database": sa.make_url(url).get_backend_name(),
        "orders": n,
        "concurrency": concurrency,
        **figures,
        "approve_ratio": round(figures["approvals_per_s"] / figures["bare_approvals_per_s"], 2),
        "payout_ratio": round(figures["payouts_per_s"] / figures["bare_payouts_per_s"], 2),
        "ledger_reconciled": rec.ok,
        "paid_exactly_once": rec.transactions == n,
        "machine": machine_info(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200 orders (< 45 s)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--orders", type=int, default=None, help="orders per side (1000)")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    p.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = p.parse_args()
    args.orders = args.orders or (200 if args.quick else 1000)
    result = asyncio.run(run(args))
    if args.json:
        print_json(result)
        return
    for key in (
        "database",
        "orders",
        "approvals_per_s",
        "bare_approvals_per_s",
        "approve_ratio",
        "payouts_per_s",
        "bare_payouts_per_s",
        "payout_ratio",
        "ledger_reconciled",
        "paid_exactly_once",
    ):
        print(f"{key:>22}: {result[key]}")


if __name__ == "__main__":
    main()
