"""Asset connectors: one interface for paying coupons, balance and cash.

The contract that makes payouts exactly-once: ``pay`` is idempotent by ``payout.id``.
Calling it again for a payout it already made must not pay again (it returns the first
result). The embedded connectors keep that with unique indexes (ledger ``ref``, coupon
``payout_id``); the HTTP connector sends the payout id as ``Idempotency-Key`` and the
receiving system must honour it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.cases.compensation_config import AssetType, PayoutSettings
from contactd.cases.ledger import Ledger, SubAccount
from contactd.cases.webhooks import post_signed
from contactd.clock import Clock
from contactd.storage.db import write_transaction
from contactd.storage.tables import coupons

DAY_MS = 86_400_000


@dataclass(frozen=True)
class PayoutJob:
    id: str  # the payout id: the idempotency key of every call
    compensation_id: str
    asset_type: AssetType
    amount: int  # fen
    account: str  # customer id, or phone:<digits>


class AssetConnector(Protocol):
    async def pay(self, payout: PayoutJob) -> str:
        """Pay ``payout`` (once per payout id); returns a reference for finance."""
        ...


class LedgerConnector:
    """Balance and cash into the customer's ledger sub-account."""

    def __init__(self, ledger: Ledger, sub: SubAccount) -> None:
        self._ledger = ledger
        self._sub = sub

    async def pay(self, payout: PayoutJob) -> str:
        posted = await self._ledger.credit(
            payout.id,
            payout.account,
            self._sub,
            payout.amount,
            f"compensation {payout.compensation_id}",
        )
        return f"ledger:{posted.txn_id}"


class CouponConnector:
    """A no-threshold coupon (无门槛券) worth the amount, in the embedded coupon table."""

    def __init__(self, engine: AsyncEngine, clock: Clock, valid_days: int) -> None:
        self._engine = engine
        self._clock = clock
        self._valid_ms = valid_days * DAY_MS

    async def pay(self, payout: PayoutJob) -> str:
        now = self._clock.now_ms()
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(coupons).on_conflict_do_nothing(index_elements=["payout_id"])
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                insert.values(
                    code="CP" + secrets.token_hex(8).upper(),
                    payout_id=payout.id,
                    account=payout.account,
                    value=payout.amount,
                    threshold=0,
                    issued_at=now,
                    expires_at=now + self._valid_ms,
                )
            )
            code = await conn.scalar(
                sa.select(coupons.c.code).where(coupons.c.payout_id == payout.id)
            )
        return f"coupon:{code}"


class HttpAssetConnector:
    """POSTs ``{payout_id, compensation_id, asset_type, amount, account}`` to the
    configured endpoint with ``Idempotency-Key: <payout id>``; a 2xx answer is paid."""

    def __init__(self, http: aiohttp.ClientSession, cfg: PayoutSettings, clock: Clock) -> None:
        assert cfg.http_url is not None  # checked by PayoutSettings
        self._http = http
        self._url = cfg.http_url
        self._secret = cfg.http_secret.get_secret_value() if cfg.http_secret else None
        self._timeout = cfg.timeout_s
        self._clock = clock

    async def pay(self, payout: PayoutJob) -> str:
        delivery = await post_signed(
            self._http,
            self._url,
            {
                "payout_id": payout.id,
                "compensation_id": payout.compensation_id,
                "asset_type": payout.asset_type.value,
                "amount": payout.amount,
                "account": payout.account,
            },
            secret=self._secret,
            now_s=self._clock.now_ms() // 1000,
            headers={"Idempotency-Key": payout.id},
            timeout_s=self._timeout,
        )
        body = delivery.body if isinstance(delivery.body, dict) else {}
        return str(body.get("ref") or body.get("id") or f"http:{delivery.status}")[:120]


def build_connectors(
    cfg: PayoutSettings,
    engine: AsyncEngine,
    ledger: Ledger,
    clock: Clock,
    http: aiohttp.ClientSession,
) -> dict[AssetType, AssetConnector]:
    embedded: dict[AssetType, AssetConnector] = {
        AssetType.coupon: CouponConnector(engine, clock, cfg.coupon_valid_days),
        AssetType.balance: LedgerConnector(ledger, "available"),
        AssetType.cash: LedgerConnector(ledger, "cash"),
    }
    out: dict[AssetType, AssetConnector] = {}
    for asset in AssetType:
        kind = cfg.connector(asset)
        out[asset] = embedded[asset] if kind == "embedded" else HttpAssetConnector(http, cfg, clock)
    return out
