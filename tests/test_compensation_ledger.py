"""The internal ledger on SQLite and PostgreSQL: double entry, idempotent postings,
balances never negative (also under concurrency and a long random run), reconciliation."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.cases.ledger import SYSTEM_ACCOUNT, Ledger, Leg, Posted, account_id
from contactd.clock import ManualClock
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.tables import ledger_accounts, ledger_entries


@pytest.fixture
def ledger(db: AsyncEngine, clock: ManualClock) -> Ledger:
    return Ledger(db, clock)


async def entries(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(ledger_entries)) or 0)


async def test_credit_freeze_unfreeze_and_deduct_balance_out(ledger: Ledger) -> None:
    await ledger.credit("p1", "c1", "available", 1_000, "compensation C1")
    await ledger.move("f1", "c1", "available", "frozen", 300, "dispute")
    b = await ledger.balances("c1")
    assert (b.available, b.frozen, b.cash) == (700, 300, 0)
    await ledger.move("u1", "c1", "frozen", "available", 100, "dispute settled")
    await ledger.deduct("d1", "c1", 500, "余额扣减")
    b = await ledger.balances("c1")
    assert (b.available, b.frozen) == (300, 200)
    journal = await ledger.journal("c1")
    assert [(j.ref, j.amount) for j in journal][:2] == [("d1", -500), ("u1", 100)]
    rec = await ledger.reconcile()
    assert rec.ok and rec.total_balance == 0 and rec.transactions == 4


async def test_overdrawing_is_refused_and_moves_nothing(ledger: Ledger, db: AsyncEngine) -> None:
    await ledger.credit("p1", "c1", "available", 500, "x")
    before = await entries(db)
    for call in (
        ledger.deduct("d1", "c1", 501, "too much"),
        ledger.move("f1", "c1", "available", "frozen", 501, "too much"),
        ledger.move("f2", "c1", "frozen", "available", 1, "nothing frozen"),
    ):
        with pytest.raises(ContactdError) as info:
            await call
        assert info.value.code == ErrorCode.insufficient_funds
    assert (await ledger.balances("c1")).available == 500
    assert await entries(db) == before
    assert (await ledger.reconcile()).ok


async def test_a_ref_is_posted_once_even_when_sent_concurrently(
    ledger: Ledger, db: AsyncEngine
) -> None:
    results = await asyncio.gather(
        *(ledger.credit("po_same", "c1", "available", 700, "x") for _ in range(5))
    )
    assert sum(not r.replayed for r in results) == 1
    assert len({r.txn_id for r in results}) == 1
    assert (await ledger.balances("c1")).available == 700
    assert await entries(db) == 2


async def test_concurrent_deductions_never_overdraw(ledger: Ledger) -> None:
    await ledger.credit("p1", "c1", "available", 500, "x")

    async def take(i: int) -> Posted | None:
        try:
            return await ledger.deduct(f"d{i}", "c1", 100, "x")
        except ContactdError:
            return None

    results = await asyncio.gather(*(take(i) for i in range(10)))
    assert sum(r is not None for r in results) == 5
    assert (await ledger.balances("c1")).available == 0
    assert (await ledger.reconcile()).ok


async def test_unbalanced_postings_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="summing to zero"):
        await ledger.post(
            "x", "bad", "", [Leg(SYSTEM_ACCOUNT, "system", -5), Leg("cust:c1:available", "c1", 4)]
        )


async def test_a_long_random_run_never_goes_negative_and_reconciles(ledger: Ledger) -> None:
    rng = random.Random(20261123)
    model = {(c, s): 0 for c in ("c1", "c2", "c3") for s in ("available", "frozen", "cash")}
    for i in range(150):
        c = rng.choice(["c1", "c2", "c3"])
        amount = rng.randint(1, 400)
        op = rng.choice(["credit", "credit_cash", "freeze", "unfreeze", "deduct"])
        legs = {
            "credit": [(c, "available", amount)],
            "credit_cash": [(c, "cash", amount)],
            "freeze": [(c, "available", -amount), (c, "frozen", amount)],
            "unfreeze": [(c, "frozen", -amount), (c, "available", amount)],
            "deduct": [(c, "available", -amount)],
        }[op]
        allowed = all(model[(o, s)] + d >= 0 for o, s, d in legs)
        try:
            if op == "credit":
                await ledger.credit(f"r{i}", c, "available", amount, op)
            elif op == "credit_cash":
                await ledger.credit(f"r{i}", c, "cash", amount, op)
            elif op == "freeze":
                await ledger.move(f"r{i}", c, "available", "frozen", amount, op)
            elif op == "unfreeze":
                await ledger.move(f"r{i}", c, "frozen", "available", amount, op)
            else:
                await ledger.deduct(f"r{i}", c, amount, op)
        except ContactdError as exc:
            assert not allowed and exc.code == ErrorCode.insufficient_funds
        else:
            assert allowed
            for o, s, d in legs:
                model[(o, s)] += d
    for c in ("c1", "c2", "c3"):
        b = await ledger.balances(c)
        assert (b.available, b.frozen, b.cash) == tuple(
            model[(c, s)] for s in ("available", "frozen", "cash")
        )
    rec = await ledger.reconcile()
    assert rec.ok and not rec.negative_accounts and rec.total_balance == 0


async def test_reconciliation_finds_a_tampered_balance_and_the_table_refuses_negatives(
    ledger: Ledger, db: AsyncEngine
) -> None:
    await ledger.credit("p1", "c1", "available", 500, "x")
    acc = account_id("c1", "available")
    async with db.begin() as conn:
        await conn.execute(
            sa.update(ledger_accounts).where(ledger_accounts.c.id == acc).values(balance=900)
        )
    rec = await ledger.reconcile()
    assert not rec.ok and rec.drifted_accounts == [acc] and rec.total_balance == 400
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(
                sa.update(ledger_accounts).where(ledger_accounts.c.id == acc).values(balance=-1)
            )
