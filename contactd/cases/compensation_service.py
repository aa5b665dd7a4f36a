"""Compensation use cases: create, review (L1 business, L2 finance), reject, resubmit,
close, batch, and recording payouts. ``check`` first, then change in one transaction that
also writes the audit entry, the payout row (on final approval) and the outbox rows;
events go on the bus after the commit."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext, Principal
from contactd.bus import Bus
from contactd.cases import compensation_store as store
from contactd.cases.compensation_config import CompensationPolicy, CompensationSettings
from contactd.cases.compensation_events import CompensationChanged, PayoutsDue
from contactd.cases.compensation_facts import OrderFacts
from contactd.cases.compensation_models import (
    BatchBody,
    BatchOut,
    BatchResult,
    CompensationCreate,
    CompensationEdit,
    CompensationView,
    CustomerNoticeView,
    QuoteBody,
    QuoteOut,
    Stage,
    Status,
)
from contactd.cases.compensation_policy import PolicyStore
from contactd.cases.compensation_rules import (
    Route,
    basis_of,
    check_fields,
    check_reviewer,
    check_transition,
    quote,
    review_route,
    stage_roles,
)
from contactd.cases.outbox import enqueue_change, notice_of
from contactd.cases.payouts import new_payout_values
from contactd.clock import Clock
from contactd.directory.base import Directory
from contactd.directory.models import normalize_phone
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import compensations, payouts

API_ROLE_GROUP = "api"


def _is_creator(row: RowMapping, who: Principal) -> bool:
    return bool(row["creator_kind"] == who.kind and row["creator_id"] == who.id)


def payout_account(customer_id: str | None, phone: str) -> str:
    return customer_id or f"phone:{normalize_phone(phone)}"


class CompensationService:
    def __init__(
        self,
        engine: AsyncEngine,
        cfg: CompensationSettings,
        clock: Clock,
        bus: Bus,
        audit: AuditLog,
        directory: Directory,
        timezone: str,
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self._bus = bus
        self._audit = audit
        self._tz = ZoneInfo(timezone)
        self._policies = PolicyStore(engine, cfg.policy, clock, audit)
        self._orders = OrderFacts(engine, directory)

    # --- policy --------------------------------------------------------------------------

    async def policy(self, conn: AsyncConnection | None = None) -> tuple[CompensationPolicy, int]:
        """The policy in force and its version (0 = the configuration file's)."""
        return await self._policies.get(conn)

    async def set_policy(
        self, policy: CompensationPolicy, version: int, ctx: AuditContext
    ) -> tuple[CompensationPolicy, int]:
        return await self._policies.put(policy, version, ctx)

    # --- reads ---------------------------------------------------------------------------

    def _visible(self, row: RowMapping, who: Principal) -> None:
        if not (who.can("compensation.view") or _is_creator(row, who)):
            raise ContactdError(ErrorCode.compensation_not_found, "no such compensation order")

    async def get(self, order_id: str, who: Principal) -> CompensationView:
        async with self._engine.connect() as conn:
            row = await store.fetch(conn, order_id)
        self._visible(row, who)
        return store.to_view(row)

    async def search(
        self, f: store.ListFilter, who: Principal
    ) -> tuple[list[CompensationView], int]:
        if not who.can("compensation.view"):  # creators see their own orders
            f = dataclasses.replace(f, only_creator_id=who.id)
        async with self._engine.connect() as conn:
            return await store.page(conn, f)

    async def for_customer(
        self, customer_id: str | None, session_id: str, limit: int = 20
    ) -> list[CustomerNoticeView]:
        """What the customer's widget shows: their orders (by customer, or from this chat),
        newest first, as the customer sees them (no reviewers, no internal notes)."""
        c = compensations.c
        mine = c.session_id == session_id
        if customer_id:
            mine = sa.or_(mine, c.customer_id == customer_id)
        stmt = sa.select(compensations).where(mine).order_by(c.created_at.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [notice_of(store.to_view(r)) for r in rows]

    async def quote(self, body: QuoteBody) -> QuoteOut:
        policy, _ = await self.policy()
        if policy.scene(body.scene) is None:
            raise ContactdError(ErrorCode.validation_failed, f"unknown scene {body.scene!r}")
        items = await self._orders.items(body.order_no, body.items, all_when_empty=True)
        amount, rule = quote(policy, body.scene, basis_of(items))
        return QuoteOut(scene=body.scene, basis=basis_of(items), amount=amount, rule=rule)

    def _role_group(self, who: Principal) -> str:
        return who.role or API_ROLE_GROUP if who.kind == "staff" else API_ROLE_GROUP

    def _new_id(self) -> str:
        day = datetime.fromtimestamp(self._clock.now_ms() / 1000, self._tz).strftime("%Y%m%d")
        return f"C{day}-{secrets.token_hex(4).upper()}"

    # --- changes -------------------------------------------------------------------------

    async def create(
        self,
        body: CompensationCreate,
        ctx: AuditContext,
        *,
        on_created: Callable[[AsyncConnection, CompensationView], Awaitable[None]] | None = None,
    ) -> CompensationView:
        """``on_created`` runs inside the creating transaction (the Idempotency-Key record
        commits with the order)."""
        who = ctx.actor
        assert who is not None
        policy, _ = await self.policy()
        scene = check_fields(policy, body)
        known = await self._orders.session_phone(body.session_id, who) if body.session_id else None
        facts = await self._orders.facts(body, known)
        route = review_route(
            policy,
            region=facts["region"],
            scene=scene.id,
            role_group=self._role_group(who),
            amount=body.amount,
        )
        now = self._clock.now_ms()
        values = {
            **facts,
            "id": self._new_id(),
            "version": 1,
            "scene_group": scene.group,
            "session_id": body.session_id,
            "creator_kind": who.kind,
            "creator_id": who.id,
            "creator_name": who.name,
            "creator_role": self._role_group(who),
            "submissions": 1,
            "created_at": now,
            "updated_at": now,
            **self._route_values(route),
        }
        async with write_transaction(self._engine) as conn:
            inserted = sa.insert(compensations).values(**values).returning(*compensations.c)
            row = (await conn.execute(inserted)).mappings().one()
            if route.first_stage is None:  # no manual review: approved at once
                row = await self._approve_final(conn, row, now, {})
            view = await self._changed(conn, ctx, "compensation.created", None, row)
            if on_created is not None:
                await on_created(conn, view)
        await self._announce("compensation.created", view, policy)
        return view

    def _route_values(self, route: Route) -> dict[str, Any]:
        stage = route.first_stage
        return {
            "needs_l1": route.needs_l1,
            "needs_l2": route.needs_l2,
            "status": Status.pending_review.value,
            "stage": stage,
            "l1_by": None,
            "l1_at": None,
            "l2_by": None,
            "l2_at": None,
            "rejected_by": None,
            "reject_reason": None,
        }

    async def _approve_final(
        self, conn: AsyncConnection, row: RowMapping, now: int, extra: dict[str, Any]
    ) -> RowMapping:
        """Approved: fix the payout id and queue the payout, in this transaction."""
        payout_id = "po_" + secrets.token_hex(12)
        account = payout_account(row["customer_id"], row["customer_phone"])
        await conn.execute(
            sa.insert(payouts).values(
                **new_payout_values(payout_id, row, account, self._cfg.payout, now)
            )
        )
        return await store.update_versioned(
            conn,
            row["id"],
            row["version"],
            {
                **extra,
                "status": Status.approved.value,
                "stage": None,
                "approved_at": now,
                "updated_at": now,
                "payout_id": payout_id,
                "payout_state": "pending",
            },
        )

    async def _changed(
        self,
        conn: AsyncConnection,
        ctx: AuditContext,
        topic: str,
        before: RowMapping | None,
        after: RowMapping,
    ) -> CompensationView:
        view = store.to_view(after)
        await self._audit.record(
            ctx.actor,
            topic,
            "compensation",
            view.id,
            before=store.to_view(before).model_dump(mode="json") if before else None,
            after=view.model_dump(mode="json"),
            ip=ctx.ip,
            request_id=ctx.request_id,
            conn=conn,
        )
        reviewers: tuple[str, ...] = ()
        stage = view.stage if view.status == Status.pending_review else None
        if stage and self._cfg.notifier.staff_webhook_url:
            policy, _ = await self.policy(conn)
            reviewers = stage_roles(policy, view.region, stage)
        await enqueue_change(conn, self._cfg, topic, view, self._clock.now_ms(), reviewers)
        newly_approved = view.status == Status.approved and topic != "compensation.approved"
        if newly_approved and (before is None or before["status"] != Status.approved.value):
            await enqueue_change(
                conn, self._cfg, "compensation.approved", view, self._clock.now_ms()
            )
        return view

    async def _announce(
        self, topic: str, view: CompensationView, policy: CompensationPolicy
    ) -> None:
        stage = view.stage if view.status == Status.pending_review else None
        roles = stage_roles(policy, view.region, stage) if stage else ()
        creator = view.creator_name if view.creator_kind == "staff" else None
        await self._bus.publish(
            [
                CompensationChanged(
                    topic=topic, order=view, creator_username=creator, reviewer_roles=roles
                ),
                PayoutsDue(),
            ]
        )

    async def _act(
        self, order_id: str, version: int, ctx: AuditContext, decide: Decide
    ) -> CompensationView:
        """Load, check visibility and version, let ``decide`` apply the change (it returns
        the topic and the new row), record it; publish after the commit."""
        who = ctx.actor
        assert who is not None
        async with write_transaction(self._engine) as conn:
            row = await store.fetch(conn, order_id)
            self._visible(row, who)
            if row["version"] != version:
                raise store.version_conflict(row["version"])
            policy, _ = await self.policy(conn)
            topic, after = await decide(conn, row, policy, who, self._clock.now_ms())
            view = await self._changed(conn, ctx, topic, row, after)
        await self._announce(topic, view, policy)
        return view

    def _check_review(
        self,
        row: RowMapping,
        policy: CompensationPolicy,
        who: Principal,
        *,
        approving: bool,
    ) -> Stage:
        stage: Stage = row["stage"]
        if not who.can("compensation.review"):
            raise ContactdError(
                ErrorCode.forbidden, "this needs the permission 'compensation.review'"
            )
        check_reviewer(
            policy,
            region=row["region"],
            stage=stage,
            amount=row["amount"],
            role=who.role if who.kind == "staff" else None,
            is_creator=_is_creator(row, who),
            approving=approving,
        )
        return stage

    async def _decide_approve(
        self,
        conn: AsyncConnection,
        row: RowMapping,
        policy: CompensationPolicy,
        who: Principal,
        now: int,
    ) -> tuple[str, RowMapping]:
        check_transition(Status(row["status"]), "approve")
        stage = self._check_review(row, policy, who, approving=True)
        if stage == "l2" and row["l1_by"] == who.name:
            raise ContactdError(
                ErrorCode.own_order, "the L1 reviewer cannot also give the L2 approval"
            )
        signed = {f"{stage}_by": who.name, f"{stage}_at": now}
        if Route(row["needs_l1"], row["needs_l2"]).after(stage) is None:
            return "compensation.approved", await self._approve_final(conn, row, now, signed)
        changed = {**signed, "stage": "l2", "updated_at": now}
        after = await store.update_versioned(conn, row["id"], row["version"], changed)
        return "compensation.reviewed", after

    async def _decide_reject(
        self,
        conn: AsyncConnection,
        row: RowMapping,
        policy: CompensationPolicy,
        who: Principal,
        now: int,
        comment: str,
    ) -> tuple[str, RowMapping]:
        check_transition(Status(row["status"]), "reject")
        self._check_review(row, policy, who, approving=False)
        changed = {
            "status": Status.rejected.value,
            "rejected_by": who.name,
            "reject_reason": comment,
            "updated_at": now,
        }
        return "compensation.rejected", await store.update_versioned(
            conn, row["id"], row["version"], changed
        )

    async def _decide_close(
        self,
        conn: AsyncConnection,
        row: RowMapping,
        policy: CompensationPolicy,
        who: Principal,
        now: int,
    ) -> tuple[str, RowMapping]:
        """The creator may withdraw or close their order; a reviewer may close a rejected
        one, or a pending one at a level they review."""
        status = Status(row["status"])
        check_transition(status, "close")
        if not _is_creator(row, who):
            if status == Status.pending_review:
                self._check_review(row, policy, who, approving=False)
            elif not who.can("compensation.review"):
                raise ContactdError(
                    ErrorCode.forbidden, "only the creator or a reviewer may close it"
                )
        changed = {
            "status": Status.closed.value,
            "stage": None,
            "closed_at": now,
            "updated_at": now,
        }
        return "compensation.closed", await store.update_versioned(
            conn, row["id"], row["version"], changed
        )

    async def approve(self, order_id: str, version: int, ctx: AuditContext) -> CompensationView:
        return await self._act(order_id, version, ctx, self._decide_approve)

    async def reject(
        self, order_id: str, version: int, comment: str, ctx: AuditContext
    ) -> CompensationView:
        async def decide(
            conn: AsyncConnection,
            row: RowMapping,
            policy: CompensationPolicy,
            who: Principal,
            now: int,
        ) -> tuple[str, RowMapping]:
            return await self._decide_reject(conn, row, policy, who, now, comment)

        return await self._act(order_id, version, ctx, decide)

    async def close(self, order_id: str, version: int, ctx: AuditContext) -> CompensationView:
        return await self._act(order_id, version, ctx, self._decide_close)

    async def resubmit(
        self, order_id: str, body: CompensationEdit, ctx: AuditContext
    ) -> CompensationView:
        """The creator edits a rejected order and sends it to review again (the route is
        worked out afresh: the amount or scene may have changed)."""
        policy, _ = await self.policy()
        scene = check_fields(policy, body)
        async with self._engine.connect() as conn:
            known = (await store.fetch(conn, order_id))["customer_phone"]
        facts = await self._orders.facts(body, known)

        async def decide(
            conn: AsyncConnection,
            row: RowMapping,
            policy: CompensationPolicy,
            who: Principal,
            now: int,
        ) -> tuple[str, RowMapping]:
            check_transition(Status(row["status"]), "resubmit")
            if not _is_creator(row, who):
                raise ContactdError(
                    ErrorCode.forbidden, "only the creator may edit and resubmit it"
                )
            route = review_route(
                policy,
                region=facts["region"],
                scene=scene.id,
                role_group=row["creator_role"],
                amount=body.amount,
            )
            changed = {
                **facts,
                **self._route_values(route),
                "scene_group": scene.group,
                "submissions": row["submissions"] + 1,
                "updated_at": now,
            }
            after = await store.update_versioned(conn, row["id"], row["version"], changed)
            if route.first_stage is None:
                after = await self._approve_final(conn, after, now, {})
            return "compensation.resubmitted", after

        return await self._act(order_id, body.version, ctx, decide)

    async def batch(self, body: BatchBody, ctx: AuditContext) -> BatchOut:
        """Each order on its own (its own transaction): one refusal does not stop the rest."""
        results: list[BatchResult] = []
        for item in body.items:
            try:
                if body.action == "approve":
                    view = await self.approve(item.id, item.version, ctx)
                elif body.action == "reject":
                    view = await self.reject(item.id, item.version, body.comment, ctx)
                else:
                    view = await self.close(item.id, item.version, ctx)
            except ContactdError as exc:
                err = {"code": exc.code.value, "message": exc.message}
                results.append(BatchResult(id=item.id, ok=False, error=err))
                continue
            results.append(
                BatchResult(id=item.id, ok=True, status=view.status, version=view.version)
            )
        ok = sum(r.ok for r in results)
        return BatchOut(results=results, succeeded=ok, failed=len(results) - ok)

    # --- payouts (called by the payout worker) ---------------------------------------------

    async def record_payout(
        self,
        conn: AsyncConnection,
        payout: RowMapping,
        ref: str | None,
        gave_up: bool,
    ) -> Callable[[], Awaitable[None]] | None:
        """In the worker's transaction: mark the order paid (or its payout failed), with
        its audit and outbox rows. Idempotent: an order already paid stays as it is.
        Returns what to announce once the transaction has committed."""
        row = await store.fetch(conn, payout["compensation_id"])
        now = self._clock.now_ms()
        if ref is not None:
            if row["status"] != Status.approved.value:
                return None
            topic = "compensation.paid"
            values: dict[str, Any] = {
                "status": Status.paid.value,
                "paid_at": now,
                "payout_state": "succeeded",
                "updated_at": now,
            }
        else:
            if not gave_up or row["payout_state"] == "failed":
                return None
            topic = "compensation.payout_failed"
            values = {"payout_state": "failed", "updated_at": now}
        after = await store.update_versioned(conn, row["id"], row["version"], values)
        view = await self._changed(conn, AuditContext(), topic, row, after)
        policy, _ = await self.policy(conn)

        async def announce() -> None:
            await self._announce(topic, view, policy)

        return announce

    async def payout_requeued(self, order_id: str, ctx: AuditContext) -> CompensationView:
        async with write_transaction(self._engine) as conn:
            row = await store.fetch(conn, order_id)
            after = await store.update_versioned(
                conn,
                order_id,
                row["version"],
                {"payout_state": "pending", "updated_at": self._clock.now_ms()},
            )
            view = await self._changed(conn, ctx, "compensation.payout_retried", row, after)
        return view


Decide = Callable[
    [AsyncConnection, RowMapping, CompensationPolicy, Principal, int],
    Awaitable[tuple[str, RowMapping]],
]
