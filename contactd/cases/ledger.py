"""The internal ledger: double-entry, idempotent postings, balances never negative.

Every customer has sub-accounts ``available`` (spendable balance), ``frozen`` (held, e.g.
during a dispute) and ``cash`` (cash owed, awaiting transfer by finance). Money enters
from the system account ``sys:compensation`` (an expense account, the only kind allowed
below zero). A posting is a transaction whose entries sum to zero; its ``ref`` (e.g. the
payout id) makes it idempotent: posting the same ref again returns the first result and
moves nothing. A customer sub-account never goes below zero: the balance update checks
it in the same statement, and the table has a CHECK constraint as a second line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import ledger_accounts, ledger_entries, ledger_txns

SubAccount = Literal["available", "frozen", "cash"]
SUB_ACCOUNTS: tuple[SubAccount, ...] = ("available", "frozen", "cash")
SYSTEM_ACCOUNT = "sys:compensation"
SYSTEM_OWNER = "system"


def account_id(owner: str, sub: SubAccount) -> str:
    return f"cust:{owner}:{sub}"


@dataclass(frozen=True)
class Leg:
    account: str  # account id
    owner: str
    amount: int  # + credit, - debit


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Posted(_Out):
    txn_id: int
    ref: str
    replayed: bool  # True: this ref was posted before; nothing moved now


class Balances(_Out):
    owner: str
    available: int
    frozen: int
    cash: int


class JournalLine(_Out):
    txn_id: int
    ref: str
    kind: str
    memo: str
    account: str
    amount: int
    at_ms: int


class Reconciliation(_Out):
    """``ok`` when every transaction sums to zero, every balance equals the sum of its
    entries, no customer sub-account is negative and all balances sum to zero."""

    ok: bool
    transactions: int
    accounts: int
    total_balance: int
    unbalanced_txns: list[int]
    drifted_accounts: list[str]
    negative_accounts: list[str]


def _insert_ignore(conn: AsyncConnection) -> sa.Insert:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ledger_accounts).on_conflict_do_nothing(index_elements=["id"])
    return stmt  # type: ignore[no-any-return]


class Ledger:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def post(self, ref: str, kind: str, memo: str, legs: Sequence[Leg]) -> Posted:
        """Post one balanced transaction, once per ``ref``."""
        if sum(leg.amount for leg in legs) != 0 or len(legs) < 2:
            raise ValueError("a posting needs two or more legs summing to zero")
        try:
            async with write_transaction(self._engine) as conn:
                existing = await self._txn_of(conn, ref)
                if existing is not None:
                    return Posted(txn_id=existing, ref=ref, replayed=True)
                return await self._post(conn, ref, kind, memo, legs)
        except IntegrityError:
            # a concurrent posting of the same ref won the unique index: report it
            async with self._engine.connect() as conn:
                existing = await self._txn_of(conn, ref)
            if existing is None:
                raise
            return Posted(txn_id=existing, ref=ref, replayed=True)

    async def _txn_of(self, conn: AsyncConnection, ref: str) -> int | None:
        found = await conn.scalar(sa.select(ledger_txns.c.id).where(ledger_txns.c.ref == ref))
        return None if found is None else int(found)

    async def _post(
        self, conn: AsyncConnection, ref: str, kind: str, memo: str, legs: Sequence[Leg]
    ) -> Posted:
        now = self._clock.now_ms()
        txn_id = (
            await conn.execute(
                sa.insert(ledger_txns)
                .values(ref=ref, kind=kind, memo=memo[:200], created_at=now)
                .returning(ledger_txns.c.id)
            )
        ).scalar_one()
        for leg in legs:
            if not await self._move(conn, leg):
                # a new account (opened at zero on first use), or not enough in it
                system = leg.account == SYSTEM_ACCOUNT
                await conn.execute(
                    _insert_ignore(conn).values(
                        id=leg.account,
                        owner=leg.owner,
                        kind="system" if system else leg.account.rsplit(":", 1)[-1],
                        balance=0,
                        allow_negative=system,
                        created_at=now,
                    )
                )
                if not await self._move(conn, leg):
                    raise ContactdError(
                        ErrorCode.insufficient_funds,
                        f"{leg.account} does not hold {-leg.amount} fen",
                        account=leg.account,
                    )
            await conn.execute(
                sa.insert(ledger_entries).values(
                    txn_id=txn_id, account_id=leg.account, amount=leg.amount, created_at=now
                )
            )
        return Posted(txn_id=int(txn_id), ref=ref, replayed=False)

    async def _move(self, conn: AsyncConnection, leg: Leg) -> bool:
        """Apply one leg unless it would take a non-negative account below zero."""
        a = ledger_accounts.c
        moved = await conn.execute(
            sa.update(ledger_accounts)
            .where(a.id == leg.account, sa.or_(a.allow_negative, a.balance + leg.amount >= 0))
            .values(balance=a.balance + leg.amount)
        )
        return bool(moved.rowcount == 1)

    # --- the operations finance and the connectors use ---------------------------------

    async def credit(self, ref: str, owner: str, sub: SubAccount, amount: int, memo: str) -> Posted:
        """Pay ``amount`` into a customer's sub-account from the compensation account."""
        return await self.post(
            ref,
            f"credit_{sub}",
            memo,
            [
                Leg(SYSTEM_ACCOUNT, SYSTEM_OWNER, -amount),
                Leg(account_id(owner, sub), owner, amount),
            ],
        )

    async def move(
        self, ref: str, owner: str, source: SubAccount, dest: SubAccount, amount: int, memo: str
    ) -> Posted:
        """Freeze (available → frozen), unfreeze (frozen → available) and the like."""
        return await self.post(
            ref,
            f"{source}_to_{dest}",
            memo,
            [
                Leg(account_id(owner, source), owner, -amount),
                Leg(account_id(owner, dest), owner, amount),
            ],
        )

    async def deduct(self, ref: str, owner: str, amount: int, memo: str) -> Posted:
        """Take ``amount`` back from a customer's available balance (余额扣减)."""
        return await self.post(
            ref,
            "deduct",
            memo,
            [
                Leg(account_id(owner, "available"), owner, -amount),
                Leg(SYSTEM_ACCOUNT, SYSTEM_OWNER, amount),
            ],
        )

    async def balances(self, owner: str) -> Balances:
        a = ledger_accounts.c
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(a.id, a.balance).where(a.owner == owner))).all()
        found = {str(r.id): int(r.balance) for r in rows}
        return Balances(
            owner=owner, **{s: found.get(account_id(owner, s), 0) for s in SUB_ACCOUNTS}
        )

    async def journal(self, owner: str, limit: int = 100) -> list[JournalLine]:
        e, x, a = ledger_entries.c, ledger_txns.c, ledger_accounts.c
        stmt = (
            sa.select(x.id, x.ref, x.kind, x.memo, e.account_id, e.amount, e.created_at)
            .select_from(ledger_entries.join(ledger_txns).join(ledger_accounts))
            .where(a.owner == owner)
            .order_by(e.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            JournalLine(
                txn_id=r[0], ref=r[1], kind=r[2], memo=r[3], account=r[4], amount=r[5], at_ms=r[6]
            )
            for r in rows
        ]

    async def reconcile(self) -> Reconciliation:
        e, a = ledger_entries.c, ledger_accounts.c
        async with self._engine.connect() as conn:
            unbalanced = (
                (
                    await conn.execute(
                        sa.select(e.txn_id).group_by(e.txn_id).having(sa.func.sum(e.amount) != 0)
                    )
                )
                .scalars()
                .all()
            )
            sums = (
                sa.select(e.account_id, sa.func.sum(e.amount).label("total"))
                .group_by(e.account_id)
                .subquery()
            )
            drift = (
                (
                    await conn.execute(
                        sa.select(a.id)
                        .select_from(ledger_accounts.outerjoin(sums, sums.c.account_id == a.id))
                        .where(a.balance != sa.func.coalesce(sums.c.total, 0))
                    )
                )
                .scalars()
                .all()
            )
            negative = (
                (
                    await conn.execute(
                        sa.select(a.id).where(sa.not_(a.allow_negative), a.balance < 0)
                    )
                )
                .scalars()
                .all()
            )
            total = await conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(a.balance), 0)))
            n_txns = await conn.scalar(sa.select(sa.func.count()).select_from(ledger_txns))
            n_accounts = await conn.scalar(sa.select(sa.func.count()).select_from(ledger_accounts))
        return Reconciliation(
            ok=not unbalanced and not drift and not negative and int(total or 0) == 0,
            transactions=int(n_txns or 0),
            accounts=int(n_accounts or 0),
            total_balance=int(total or 0),
            unbalanced_txns=[int(i) for i in unbalanced],
            drifted_accounts=[str(i) for i in drift],
            negative_accounts=[str(i) for i in negative],
        )
