"""The case dashboard (read-only SQL): tickets and compensation orders counted by time,
scene and status; compensation amounts by asset type; average response and resolution
times; repeat purchase after compensation versus all customers; and the compensated
customers by region, gender and age band.

Time buckets are computed in SQL as whole days (or hours) in the configured time zone, so
the same query runs on SQLite and PostgreSQL. Customer attributes and orders come from the
embedded directory's tables (``dir_customers``, ``dir_orders``); with an HTTP directory
those sections are empty and say so (``directory_rows: false``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_models import STATE_LABELS
from contactd.clock import Clock
from contactd.storage.tables import compensations, dir_customers, dir_orders, tickets

Bucket = Literal["day", "hour"]
DAY_MS = 86_400_000
_BUCKET_MS = {"day": DAY_MS, "hour": 3_600_000}
AGE_BANDS = ((0, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"))
COMPENSATED = ("paid",)  # compensation orders that count as "compensated"
TICKET_COMPENSATED = ("paid", "refunded")  # and tickets that paid the customer


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Count(_Out):
    key: str
    label: str
    count: int
    amount: int = Field(default=0, description="fen")


class Series(_Out):
    bucket_start: int = Field(description="ms since the epoch, local midnight (or hour)")
    tickets: int
    compensations: int
    amount: int = Field(description="compensation fen created in the bucket")


class Timing(_Out):
    avg_response_s: float | None = Field(description="created → first action by a person")
    avg_resolution_s: float | None = Field(description="created → closed")
    responded: int
    resolved: int


class Repeat(_Out):
    group: Literal["compensated", "all"]
    customers: int
    within_7d: int
    within_30d: int
    rate_7d: float | None
    rate_30d: float | None


class Dashboard(_Out):
    since: int
    until: int
    bucket: Bucket
    timezone: str
    series: list[Series]
    tickets_by_type: list[Count]
    tickets_by_state: list[Count]
    compensations_by_scene: list[Count]
    compensations_by_status: list[Count]
    amounts_by_asset: list[Count]
    ticket_timing: Timing
    compensation_timing: Timing
    repeat_purchase: list[Repeat]
    by_region: list[Count]
    by_gender: list[Count]
    by_age_band: list[Count]
    directory_rows: bool


def _avg_s(total_ms: Any, n: int) -> float | None:
    return round(float(total_ms) / n / 1000, 1) if n else None


def _counts(rows: Any, labels: dict[str, str] | None = None) -> list[Count]:
    out = [
        Count(
            key=str(r[0]),
            label=(labels or {}).get(str(r[0]), str(r[0])),
            count=int(r[1]),
            amount=int(r[2] or 0) if len(r) > 2 else 0,
        )
        for r in rows
    ]
    return sorted(out, key=lambda c: (-c.count, c.key))


def age_band(birth_year: int | None, year: int) -> str:
    if birth_year is None:
        return "unknown"
    age = year - birth_year
    for low, high, label in AGE_BANDS:
        if low <= age < high:
            return label
    return "55+"


class DashboardService:
    def __init__(self, engine: AsyncEngine, clock: Clock, timezone: str) -> None:
        self._engine = engine
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._tz_name = timezone

    def default_window(self, days: int = 30) -> tuple[int, int]:
        now = self._clock.now_ms()
        return now - days * DAY_MS, now

    async def build(self, since: int, until: int, bucket: Bucket = "day") -> Dashboard:
        offset = int(
            datetime.fromtimestamp(since / 1000, tz=self._tz)
            .utcoffset()  # type: ignore[union-attr]
            .total_seconds()
            * 1000
        )
        async with self._engine.connect() as conn:
            series = await self._series(conn, since, until, _BUCKET_MS[bucket], offset)
            t_in = tickets.c.created_at.between(since, until - 1)
            c_in = compensations.c.created_at.between(since, until - 1)
            by_type = await conn.execute(
                sa.select(tickets.c.type, sa.func.count(), sa.func.sum(tickets.c.amount))
                .where(t_in)
                .group_by(tickets.c.type)
            )
            by_state = await conn.execute(
                sa.select(tickets.c.state, sa.func.count()).where(t_in).group_by(tickets.c.state)
            )
            by_scene = await conn.execute(
                sa.select(
                    compensations.c.scene, sa.func.count(), sa.func.sum(compensations.c.amount)
                )
                .where(c_in)
                .group_by(compensations.c.scene)
            )
            by_status = await conn.execute(
                sa.select(
                    compensations.c.status, sa.func.count(), sa.func.sum(compensations.c.amount)
                )
                .where(c_in)
                .group_by(compensations.c.status)
            )
            by_asset = await conn.execute(
                sa.select(
                    compensations.c.asset_type,
                    sa.func.count(),
                    sa.func.sum(compensations.c.amount),
                )
                .where(c_in, compensations.c.status.in_(("approved", "paid")))
                .group_by(compensations.c.asset_type)
            )
            ticket_timing = await self._timing(
                conn, tickets, tickets.c.first_action_at, tickets.c.closed_at, t_in
            )
            comp_timing = await self._timing(
                conn,
                compensations,
                sa.func.coalesce(compensations.c.l1_at, compensations.c.l2_at),
                sa.func.coalesce(compensations.c.paid_at, compensations.c.closed_at),
                c_in,
            )
            compensated = await self._compensated(conn, since, until)
            repeat, breakdown, has_dir = await self._customers(conn, compensated, since, until)
        type_labels = {t.value: t.label for t in TicketType}
        return Dashboard(
            since=since,
            until=until,
            bucket=bucket,
            timezone=self._tz_name,
            series=series,
            tickets_by_type=_counts(by_type, type_labels),
            tickets_by_state=_counts(by_state, STATE_LABELS),
            compensations_by_scene=_counts(by_scene),
            compensations_by_status=_counts(by_status),
            amounts_by_asset=_counts(
                by_asset, {"coupon": "优惠券", "cash": "现金", "balance": "余额"}
            ),
            ticket_timing=ticket_timing,
            compensation_timing=comp_timing,
            repeat_purchase=repeat,
            by_region=breakdown["region"],
            by_gender=breakdown["gender"],
            by_age_band=breakdown["age"],
            directory_rows=has_dir,
        )

    async def _series(
        self, conn: AsyncConnection, since: int, until: int, size: int, offset: int
    ) -> list[Series]:
        found: dict[int, dict[str, int]] = defaultdict(
            lambda: {"tickets": 0, "compensations": 0, "amount": 0}
        )
        for table, name in ((tickets, "tickets"), (compensations, "compensations")):
            slot = ((table.c.created_at + offset) / size).label("slot")
            amount = sa.func.sum(compensations.c.amount) if name == "compensations" else sa.null()
            rows = await conn.execute(
                sa.select(slot, sa.func.count(), amount)
                .where(table.c.created_at.between(since, until - 1))
                .group_by(slot)
            )
            for s, n, total in rows:
                found[int(s)][name] += int(n)
                if total is not None:
                    found[int(s)]["amount"] += int(total)
        first, last = (since + offset) // size, (until - 1 + offset) // size
        return [
            Series(
                bucket_start=s * size - offset,
                **found.get(s, {"tickets": 0, "compensations": 0, "amount": 0}),
            )
            for s in range(first, last + 1)
        ][-400:]

    async def _timing(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        responded: Any,
        resolved: Any,
        where: Any,
    ) -> Timing:
        created = table.c.created_at
        row = (
            await conn.execute(
                sa.select(
                    sa.func.count(responded),
                    sa.func.sum(responded - created),
                    sa.func.count(resolved),
                    sa.func.sum(resolved - created),
                ).where(where)
            )
        ).one()
        n_resp, t_resp, n_res, t_res = int(row[0]), row[1] or 0, int(row[2]), row[3] or 0
        return Timing(
            avg_response_s=_avg_s(t_resp, n_resp),
            avg_resolution_s=_avg_s(t_res, n_res),
            responded=n_resp,
            resolved=n_res,
        )

    async def _compensated(
        self, conn: AsyncConnection, since: int, until: int
    ) -> dict[str, tuple[int, int]]:
        """customer id → (first time compensated in the window, fen paid)."""
        out: dict[str, tuple[int, int]] = {}
        paid_at = sa.func.coalesce(compensations.c.paid_at, compensations.c.created_at)
        rows = await conn.execute(
            sa.select(compensations.c.customer_id, paid_at, compensations.c.amount).where(
                compensations.c.customer_id.is_not(None),
                compensations.c.status.in_(COMPENSATED),
                paid_at.between(since, until - 1),
            )
        )
        t_rows = await conn.execute(
            sa.select(tickets.c.customer_id, tickets.c.closed_at, tickets.c.amount).where(
                tickets.c.customer_id.is_not(None),
                tickets.c.type == TicketType.compensation.value,
                tickets.c.state.in_(TICKET_COMPENSATED),
                tickets.c.closed_at.between(since, until - 1),
            )
        )
        for cid, at, amount in [*rows, *t_rows]:
            first, total = out.get(cid, (at, 0))
            out[cid] = (min(first, at), total + int(amount))
        return out

    async def _customers(
        self,
        conn: AsyncConnection,
        compensated: dict[str, tuple[int, int]],
        since: int,
        until: int,
    ) -> tuple[list[Repeat], dict[str, list[Count]], bool]:
        has_dir = (await conn.execute(sa.select(dir_customers.c.id).limit(1))).first() is not None
        orders: dict[str, list[int]] = defaultdict(list)
        rows = await conn.execute(
            sa.select(dir_orders.c.customer_id, dir_orders.c.created_at).where(
                dir_orders.c.created_at >= since
            )
        )
        for cid, at in rows:
            orders[cid].append(int(at))
        baseline: dict[str, int] = {}
        for cid, times in orders.items():
            in_window = [t for t in times if t < until]
            if in_window:
                baseline[cid] = min(in_window)

        def repeat(group: Literal["compensated", "all"], starts: dict[str, int]) -> Repeat:
            hits = {7: 0, 30: 0}
            for cid, start in starts.items():
                for days in hits:
                    if any(start < t <= start + days * DAY_MS for t in orders.get(cid, [])):
                        hits[days] += 1
            n = len(starts)
            return Repeat(
                group=group,
                customers=n,
                within_7d=hits[7],
                within_30d=hits[30],
                rate_7d=round(hits[7] / n, 4) if n else None,
                rate_30d=round(hits[30] / n, 4) if n else None,
            )

        repeats = [
            repeat("compensated", {c: at for c, (at, _) in compensated.items()}),
            repeat("all", baseline),
        ]
        groups: dict[str, dict[str, list[int]]] = {"region": {}, "gender": {}, "age": {}}
        if compensated:
            people = await conn.execute(
                sa.select(
                    dir_customers.c.id,
                    dir_customers.c.province,
                    dir_customers.c.gender,
                    dir_customers.c.birth_year,
                ).where(dir_customers.c.id.in_(list(compensated)))
            )
            year = datetime.fromtimestamp(until / 1000, tz=self._tz).year
            seen = set()
            for cid, province, gender, birth in people:
                seen.add(cid)
                amount = compensated[cid][1]
                for name, key in (
                    ("region", province or "unknown"),
                    ("gender", gender),
                    ("age", age_band(birth, year)),
                ):
                    n, total = groups[name].get(key, [0, 0])
                    groups[name][key] = [n + 1, total + amount]
            for cid in set(compensated) - seen:  # not in the directory
                for name in groups:
                    n, total = groups[name].get("unknown", [0, 0])
                    groups[name]["unknown"] = [n + 1, total + compensated[cid][1]]
        labels = {"male": "男", "female": "女", "unknown": "未知"}
        breakdown = {
            name: _counts([(k, v[0], v[1]) for k, v in found.items()], labels)
            for name, found in groups.items()
        }
        return repeats, breakdown, has_dir
