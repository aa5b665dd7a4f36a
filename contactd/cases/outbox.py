"""The case outbox: signed webhooks on status changes and customer notifications, written
in the same transaction as the change and delivered afterwards by a worker with retries.
The rows are the delivery log (``GET /api/v1/webhook-deliveries``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.bus import Bus
from contactd.cases import jobs
from contactd.cases.compensation_config import CompensationSettings
from contactd.cases.compensation_events import CustomerNotified
from contactd.cases.compensation_models import (
    CUSTOMER_LABELS,
    CompensationView,
    CustomerNoticeView,
    DeliveryView,
    Status,
)
from contactd.cases.webhooks import DeliveryFailed, post_signed
from contactd.clock import Clock, to_datetime
from contactd.directory.models import format_yuan
from contactd.storage.db import write_transaction
from contactd.storage.tables import case_outbox as t

log = logging.getLogger(__name__)
WEBHOOK, NOTIFY_WIDGET, NOTIFY_HOOK = "webhook", "notify_widget", "notify_hook"
NOTIFY_STAFF = "notify_staff"
# what the creator hears about their order; reviewers hear of every order reaching them
CREATOR_TOPICS = {
    "compensation.approved": "已审核通过，等待发放",
    "compensation.rejected": "被驳回",
    "compensation.paid": "已发放到账",
    "compensation.payout_failed": "发放失败，财务处理中",
}
BATCH = 50
NOTIFY_TOPICS = frozenset({"compensation.paid"})


def notice_of(view: CompensationView) -> CustomerNoticeView:
    return CustomerNoticeView(
        compensation_id=view.id,
        status=view.status,
        label=CUSTOMER_LABELS[view.status],
        asset_type=view.asset_type,
        asset_label=view.asset_type.label,
        amount=view.amount,
    )


async def enqueue_change(
    conn: AsyncConnection,
    cfg: CompensationSettings,
    topic: str,
    view: CompensationView,
    now: int,
    reviewers: tuple[str, ...] = (),
) -> None:
    """Queue what a status change sends: a webhook per subscriber of ``topic``; for a
    landed payout the customer's notices; the staff notices (``reviewers``: the roles
    reviewing the order's level now)."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, target: str, payload: dict[str, Any]) -> None:
        rows.append(
            {
                "kind": kind,
                "topic": topic,
                "target": target,
                "subject_id": view.id,
                "payload": payload,
                "state": jobs.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )

    data = view.model_dump(mode="json")
    for hook in cfg.webhooks:
        if topic in hook.events:
            add(WEBHOOK, hook.url, {"event": topic, "created_at": now, "data": data})
    if topic in NOTIFY_TOPICS:
        notice = notice_of(view).model_dump(mode="json")
        if cfg.notifier.widget and view.session_id:
            add(NOTIFY_WIDGET, view.session_id, notice)
        if cfg.notifier.webhook_url:
            text = (
                f"您的赔付 {format_yuan(view.amount)}（{view.asset_type.label}）"
                f"{CUSTOMER_LABELS[Status(view.status)]}"
            )
            add(
                NOTIFY_HOOK,
                cfg.notifier.webhook_url,
                {"to": view.customer_phone, "template": topic, "text": text, "params": notice},
            )
    staff_url = cfg.notifier.staff_webhook_url
    if staff_url:
        head = f"赔付单 {view.id}（{format_yuan(view.amount)}，{view.asset_type.label}）"
        if view.stage and reviewers:  # (given only while it waits for review)
            level = "业务审核" if view.stage == "l1" else "财务审核"
            text = f"{head}待{level}"
            add(NOTIFY_STAFF, staff_url, {"to_roles": list(reviewers), "text": text, "data": data})
        if topic in CREATOR_TOPICS and view.creator_kind == "staff":
            text = f"{head}{CREATOR_TOPICS[topic]}"
            add(NOTIFY_STAFF, staff_url, {"to_user": view.creator_name, "text": text, "data": data})
    if rows:
        await conn.execute(sa.insert(t), rows)


class OutboxWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        cfg: CompensationSettings,
        clock: Clock,
        bus: Bus,
        http: aiohttp.ClientSession,
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self._bus = bus
        self._http = http
        self.wake = asyncio.Event()

    async def run(self) -> None:
        await jobs.run_forever(self.run_once, self.wake, self._cfg.payout.poll_s, "outbox")

    async def run_once(self) -> int:
        """Deliver every due row once; the number delivered."""
        lease = int(self._cfg.payout.lease_s * 1000)
        rows = await jobs.claim_due(self._engine, t, self._clock.now_ms(), lease, BATCH)
        done = await asyncio.gather(*(self._deliver(r) for r in rows))
        return sum(done)

    async def _deliver(self, row: RowMapping) -> bool:
        status: int | None = None
        try:
            status = await self._send(row)
        except DeliveryFailed as exc:
            await self._failed(row, str(exc), exc.status, retry=exc.retry)
            return False
        except Exception as exc:  # a bug must not stop the other deliveries
            log.exception("outbox row %s failed", row["id"])
            await self._failed(row, f"{type(exc).__name__}: {exc}", None, retry=True)
            return False
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.id == row["id"])
                .values(
                    state="delivered",
                    lease_until=None,
                    last_status=status,
                    last_error=None,
                    delivered_at=self._clock.now_ms(),
                )
            )
        return True

    async def _send(self, row: RowMapping) -> int | None:
        payload: dict[str, Any] = row["payload"]
        if row["kind"] == NOTIFY_WIDGET:
            notice = CustomerNoticeView.model_validate(payload)
            await self._bus.publish([CustomerNotified(session_id=row["target"], notice=notice)])
            return None
        if row["kind"] == WEBHOOK:
            hook = next((h for h in self._cfg.webhooks if h.url == row["target"]), None)
            secret = hook.secret.get_secret_value() if hook else None
        else:
            n = self._cfg.notifier
            configured = n.staff_webhook_secret if row["kind"] == NOTIFY_STAFF else n.webhook_secret
            secret = configured.get_secret_value() if configured else None
        delivery = await post_signed(
            self._http,
            row["target"],
            payload,
            secret=secret,
            now_s=self._clock.now_ms() // 1000,
            headers={"X-Contactd-Event": row["topic"], "X-Contactd-Delivery": str(row["id"])},
            timeout_s=self._cfg.payout.timeout_s,
        )
        return delivery.status

    async def _failed(self, row: RowMapping, error: str, status: int | None, retry: bool) -> None:
        p = self._cfg.payout
        attempts = row["attempts"] if retry else self._cfg.outbox_max_attempts
        values = jobs.retry_values(
            attempts,
            self._cfg.outbox_max_attempts,
            self._clock.now_ms(),
            error,
            p.backoff_s,
            p.backoff_max_s,
        )
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                sa.update(t).where(t.c.id == row["id"]).values(**values, last_status=status)
            )

    async def deliveries(self, subject_id: str | None, limit: int) -> list[DeliveryView]:
        """The delivery log, newest first."""
        stmt = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if subject_id:
            stmt = stmt.where(t.c.subject_id == subject_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [
            DeliveryView(
                id=r["id"],
                kind=r["kind"],
                topic=r["topic"],
                target=r["target"],
                subject_id=r["subject_id"],
                state=r["state"],
                attempts=r["attempts"],
                last_status=r["last_status"],
                last_error=r["last_error"],
                created_at=to_datetime(r["created_at"]),
                next_attempt_at=to_datetime(r["next_attempt_at"]),
                delivered_at=to_datetime(r["delivered_at"]) if r["delivered_at"] else None,
            )
            for r in rows
        ]
