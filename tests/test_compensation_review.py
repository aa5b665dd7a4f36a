"""Compensation orders through the service, on SQLite and PostgreSQL: review routes from the
rules, approval flows, maker-checker, amount limits, every transition, optimistic
versioning under concurrency, batches with mixed results, visibility, the calculator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.cases.compensation_app import Compensation
from contactd.cases.compensation_config import (
    DEFAULT_POLICY,
    ApprovalFlow,
    CompensationPolicy,
    ReviewRule,
)
from contactd.cases.compensation_models import (
    BatchBody,
    CompensationEdit,
    CompensationView,
    QuoteBody,
    Status,
)
from contactd.cases.compensation_store import ListFilter
from contactd.clock import ManualClock
from contactd.errors import ContactdError
from contactd.settings import Settings
from contactd.storage.tables import payouts
from tests.compensation_helpers import (
    ORDER_NO,
    OTHER_ORDER_NO,
    OTHER_PHONE,
    add_session,
    as_,
    compensation,
    order_body,
    staff,
)


@pytest.fixture
async def comp(
    settings: Settings, db: AsyncEngine, clock: ManualClock
) -> AsyncIterator[Compensation]:
    async with compensation(settings, db, clock) as c:
        yield c


async def refused(code: str, call: Any) -> ContactdError:
    with pytest.raises(ContactdError) as info:
        await call
    assert info.value.code.value == code, info.value.message
    return info.value


async def create(
    comp: Compensation, settings: Settings, who: str = "ag1", **kw: Any
) -> CompensationView:
    return await comp.service.create(order_body(**kw), as_(settings, who))


async def approve(
    comp: Compensation, settings: Settings, view: CompensationView, who: str
) -> CompensationView:
    return await comp.service.approve(view.id, view.version, as_(settings, who))


async def test_a_small_order_needs_business_review_only_then_waits_for_payout(
    comp: Compensation, settings: Settings, db: AsyncEngine
) -> None:
    order = await create(comp, settings, amount=5_000)
    assert (order.status, order.stage, order.needs_l1, order.needs_l2) == (
        Status.pending_review,
        "l1",
        True,
        False,
    )
    assert order.manual_review and order.region == "广东省" and order.customer_id == "c1"
    assert order.items[0].name == "马克杯 Mug" and order.items[0].amount == 10_000
    done = await approve(comp, settings, order, "rev1")
    assert done.status == Status.approved and done.l1_by == "rev1" and done.stage is None
    assert done.payout_id and done.payout_state == "pending"
    async with db.connect() as conn:
        rows = (await conn.execute(sa.select(payouts))).mappings().all()
    assert [(r["id"], r["amount"], r["account"], r["state"]) for r in rows] == [
        (done.payout_id, 5_000, "c1", "pending")
    ]


async def test_a_large_order_goes_through_business_then_finance(
    comp: Compensation, settings: Settings
) -> None:
    order = await create(comp, settings, amount=15_000)
    assert order.needs_l1 and order.needs_l2 and order.stage == "l1"
    await refused("not_your_stage", approve(comp, settings, order, "fin1"))
    order = await approve(comp, settings, order, "rev1")
    assert order.status == Status.pending_review and order.stage == "l2"
    await refused("not_your_stage", approve(comp, settings, order, "rev2"))
    order = await approve(comp, settings, order, "fin1")
    assert order.status == Status.approved and (order.l1_by, order.l2_by) == ("rev1", "fin1")


async def test_the_creator_never_approves_and_one_person_never_gives_both_levels(
    comp: Compensation, settings: Settings
) -> None:
    own = await create(comp, settings, "boss", amount=15_000)
    await refused("own_order", approve(comp, settings, own, "boss"))
    await refused(
        "own_order", comp.service.reject(own.id, own.version, "no", as_(settings, "boss"))
    )
    order = await create(comp, settings, amount=15_000)
    order = await approve(comp, settings, order, "boss")
    await refused("own_order", approve(comp, settings, order, "boss"))
    assert (await approve(comp, settings, order, "fin1")).status == Status.approved


async def test_each_reviewer_role_has_an_amount_limit(
    comp: Compensation, settings: Settings
) -> None:
    order = await create(comp, settings, amount=30_000)
    err = await refused("over_amount_limit", approve(comp, settings, order, "sup1"))
    assert err.details["limit"] == 20_000
    unchanged = await comp.service.get(order.id, staff(settings, "rev1"))
    assert unchanged.version == order.version and unchanged.stage == "l1"
    # rejecting is not limited by the amount
    rejected = await comp.service.reject(order.id, order.version, "photo?", as_(settings, "sup1"))
    assert rejected.status == Status.rejected
    big = await create(comp, settings, amount=60_000)
    await refused("over_amount_limit", approve(comp, settings, big, "rev1"))
    assert (await approve(comp, settings, big, "boss")).stage == "l2"


async def test_no_review_under_the_rule_threshold_approves_at_once(
    comp: Compensation, settings: Settings
) -> None:
    small = await create(
        comp,
        settings,
        scene="coupon_expired",
        asset_type="coupon",
        amount=1_500,
        after_sales_no="AS1",
    )
    assert small.status == Status.approved and not small.manual_review and small.payout_id
    bigger = await create(
        comp,
        settings,
        scene="coupon_expired",
        asset_type="coupon",
        amount=2_500,
        after_sales_no="AS2",
    )
    assert bigger.status == Status.pending_review and not bigger.needs_l2


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"scene": "coupon_expired", "asset_type": "coupon"}, "validation_failed"),  # no AS no.
        (
            {"scene": "coupon_expired", "asset_type": "balance", "after_sales_no": "A"},
            "asset_not_allowed",
        ),
        ({"scene": "nope"}, "validation_failed"),
        ({"customer_phone": OTHER_PHONE}, "validation_failed"),  # not their order
        ({"items": [{"sku": "SKU-9", "qty": 1}]}, "validation_failed"),
        ({"items": [{"sku": "SKU-1", "qty": 3}]}, "validation_failed"),
        ({"amount": 70_000}, "validation_failed"),  # more than was paid
        ({"amount": 2_000_000, "asset_type": "coupon"}, "validation_failed"),  # policy maximum
        ({"order_no": "O404"}, "validation_failed"),
        ({"order_no": None}, "validation_failed"),  # items need the order
        ({"customer_phone": "abc-def"}, "validation_failed"),
    ],
)
async def test_bad_orders_are_refused_and_nothing_is_stored(
    comp: Compensation, settings: Settings, kw: dict[str, Any], code: str
) -> None:
    await refused(code, create(comp, settings, **kw))
    items, total = await comp.service.search(ListFilter(), staff(settings, "rev1"))
    assert total == 0 and items == []


async def test_the_most_specific_rule_and_the_regions_flow_decide(
    comp: Compensation, settings: Settings
) -> None:
    policy = DEFAULT_POLICY.model_copy(
        update={
            "rules": (
                ReviewRule(l1_over=0, l2_over=10_000),
                ReviewRule(region="广东省", l1_over=8_000, l2_over=50_000),
                ReviewRule(scene="defect", l1_over=0, l2_over=1_000),
                ReviewRule(role_group="supervisor", l1_over=None, l2_over=None),
            ),
            "flows": (
                *DEFAULT_POLICY.flows,
                ApprovalFlow(region="广东省", l1_roles=("supervisor",), l2_roles=("finance",)),
            ),
        }
    )
    policy = CompensationPolicy.model_validate(policy.model_dump())
    _, version = await comp.service.set_policy(policy, 0, as_(settings, "boss"))
    assert version == 1
    await refused("version_conflict", comp.service.set_policy(policy, 0, as_(settings, "boss")))
    # region rule beats the scene rule: 9000 > 8000 → L1, < 50000 → no L2
    gd = await create(comp, settings, amount=9_000)
    assert (gd.needs_l1, gd.needs_l2) == (True, False)
    under = await create(comp, settings, amount=7_000)
    assert under.status == Status.approved
    # 广东省's flow gives L1 to supervisors only
    await refused("not_your_stage", approve(comp, settings, gd, "rev1"))
    assert (await approve(comp, settings, gd, "sup1")).status == Status.approved
    # no region: the scene rule
    other = await create(
        comp, settings, customer_phone=OTHER_PHONE, order_no=OTHER_ORDER_NO, items=[], amount=2_000
    )
    assert other.region == "-" and (other.needs_l1, other.needs_l2) == (True, True)
    # a region given explicitly wins over the customer's
    told = await create(comp, settings, amount=9_000, region="浙江省")
    assert told.region == "浙江省" and told.needs_l1 and told.needs_l2  # the scene rule


ACTIONS = ("approve", "reject", "close", "resubmit")
LEGAL = {
    Status.pending_review: {"approve", "reject", "close"},
    Status.rejected: {"close", "resubmit"},
    Status.approved: set(),
    Status.paid: set(),
    Status.closed: set(),
}


async def _in_status(comp: Compensation, settings: Settings, status: Status) -> CompensationView:
    order = await create(comp, settings, amount=5_000)
    if status == Status.rejected:
        return await comp.service.reject(order.id, order.version, "no", as_(settings, "rev1"))
    if status == Status.closed:
        return await comp.service.close(order.id, order.version, as_(settings, "ag1"))
    if status in (Status.approved, Status.paid):
        order = await approve(comp, settings, order, "rev1")
        if status == Status.paid:
            assert await comp.payouts.run_once() == 1
            order = await comp.service.get(order.id, staff(settings, "rev1"))
    assert order.status == status
    return order


async def _do(comp: Compensation, settings: Settings, action: str, o: CompensationView) -> Any:
    if action == "approve":
        return await approve(comp, settings, o, "rev2")
    if action == "reject":
        return await comp.service.reject(o.id, o.version, "why", as_(settings, "rev2"))
    if action == "close":
        return await comp.service.close(o.id, o.version, as_(settings, "ag1"))
    edit = CompensationEdit.model_validate(
        {**order_body().model_dump(exclude={"session_id"}), "version": o.version}
    )
    return await comp.service.resubmit(o.id, edit, as_(settings, "ag1"))


@pytest.mark.parametrize("status", list(LEGAL))
async def test_every_transition_legal_and_illegal(
    comp: Compensation, settings: Settings, status: Status
) -> None:
    for action in ACTIONS:
        order = await _in_status(comp, settings, status)
        if action in LEGAL[status]:
            after = await _do(comp, settings, action, order)
            assert after.version == order.version + 1
        else:
            err = await refused("invalid_state", _do(comp, settings, action, order))
            assert err.details["status"] == status.value
            now = await comp.service.get(order.id, staff(settings, "rev1"))
            assert now.version == order.version


async def test_two_reviewers_at_once_one_wins_the_other_gets_a_conflict(
    comp: Compensation, settings: Settings
) -> None:
    order = await create(comp, settings, amount=5_000)
    results = await asyncio.gather(
        approve(comp, settings, order, "rev1"),
        comp.service.reject(order.id, order.version, "no", as_(settings, "rev2")),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, CompensationView)]
    losses = [r for r in results if isinstance(r, ContactdError)]
    assert len(wins) == 1 and len(losses) == 1
    assert losses[0].code.value == "version_conflict"
    assert losses[0].details["current_version"] == order.version + 1
    await refused("version_conflict", approve(comp, settings, order, "rev2"))  # stale


async def test_resubmit_after_rejection_is_the_creators_and_reroutes(
    comp: Compensation, settings: Settings
) -> None:
    order = await create(comp, settings, amount=5_000)
    order = await comp.service.reject(order.id, order.version, "too much?", as_(settings, "rev1"))
    assert order.reject_reason == "too much?" and order.rejected_by == "rev1"
    edit = CompensationEdit.model_validate(
        {**order_body(amount=12_000).model_dump(exclude={"session_id"}), "version": order.version}
    )
    await refused(
        "compensation_not_found", comp.service.resubmit(order.id, edit, as_(settings, "ag2"))
    )
    await refused("forbidden", comp.service.resubmit(order.id, edit, as_(settings, "rev2")))
    again = await comp.service.resubmit(order.id, edit, as_(settings, "ag1"))
    assert again.status == Status.pending_review and again.submissions == 2
    assert again.needs_l2 and again.reject_reason is None and again.amount == 12_000


async def test_batch_gives_a_result_per_order(comp: Compensation, settings: Settings) -> None:
    fine = await create(comp, settings, amount=5_000)
    own = await create(comp, settings, "rev1", amount=5_000)
    stale = await create(comp, settings, amount=5_000)
    done = await comp.service.reject(
        (x := await create(comp, settings, amount=5_000)).id, x.version, "no", as_(settings, "rev2")
    )
    body = BatchBody.model_validate(
        {
            "action": "approve",
            "items": [
                {"id": fine.id, "version": fine.version},
                {"id": own.id, "version": own.version},
                {"id": stale.id, "version": stale.version + 5},
                {"id": "C-missing", "version": 1},
                {"id": done.id, "version": done.version},
            ],
        }
    )
    out = await comp.service.batch(body, as_(settings, "rev1"))
    assert (out.succeeded, out.failed) == (1, 4)
    by_id = {r.id: r for r in out.results}
    assert by_id[fine.id].ok and by_id[fine.id].status == Status.approved
    codes = {i: (r.error or {}).get("code") for i, r in by_id.items() if not r.ok}
    assert codes == {
        own.id: "own_order",
        stale.id: "version_conflict",
        "C-missing": "compensation_not_found",
        done.id: "invalid_state",
    }
    closed = await comp.service.batch(
        BatchBody.model_validate(
            {"action": "close", "items": [{"id": done.id, "version": done.version}]}
        ),
        as_(settings, "rev1"),
    )
    assert closed.results[0].status == Status.closed
    with pytest.raises(ValueError, match="comment"):
        BatchBody.model_validate({"action": "reject", "items": [{"id": fine.id, "version": 1}]})


async def test_orders_are_visible_to_their_creator_and_to_viewers_only(
    comp: Compensation, settings: Settings
) -> None:
    mine = await create(comp, settings, "ag1", amount=5_000)
    await create(comp, settings, "ag2", amount=6_000)
    await refused("compensation_not_found", comp.service.get(mine.id, staff(settings, "ag2")))
    await refused(
        "compensation_not_found",
        comp.service.close(mine.id, mine.version, as_(settings, "ag2")),
    )
    own, total = await comp.service.search(ListFilter(), staff(settings, "ag2"))
    assert total == 1 and own[0].creator_name == "ag2"
    _, everyone = await comp.service.search(ListFilter(), staff(settings, "rev1"))
    assert everyone == 2
    by_creator, n = await comp.service.search(ListFilter(creator="ag1"), staff(settings, "rev1"))
    assert n == 1 and by_creator[0].id == mine.id
    _, n = await comp.service.search(ListFilter(status=Status.paid), staff(settings, "rev1"))
    assert n == 0
    _, n = await comp.service.search(
        ListFilter(scene="defect", query=ORDER_NO), staff(settings, "rev1")
    )
    assert n == 2


async def test_every_change_is_in_the_audit_log(
    comp: Compensation, settings: Settings, db: AsyncEngine, clock: ManualClock
) -> None:
    order = await create(comp, settings, amount=5_000)
    order = await approve(comp, settings, order, "rev1")
    entries = await AuditLog(db, clock).query(target_type="compensation", target_id=order.id)
    assert [(e.action, e.actor_name) for e in reversed(entries)] == [
        ("compensation.created", "ag1"),
        ("compensation.approved", "rev1"),
    ]
    assert entries[0].before and entries[0].before["status"] == "pending_review"
    assert entries[0].after and entries[0].after["status"] == "approved"


@pytest.mark.parametrize(
    ("scene", "items", "amount"),
    [
        ("defect", [], 19_500),  # 30% of 65000
        ("defect", [{"sku": "SKU-1", "qty": 1}], 3_000),  # 30% of 10000
        ("damaged", [{"sku": "SKU-2", "qty": 1}], 22_500),  # 50% of 45000
        ("late", [], 1_000),  # fixed
    ],
)
async def test_the_calculator_suggests_standard_amounts(
    comp: Compensation, scene: str, items: list[dict[str, Any]], amount: int
) -> None:
    body = QuoteBody.model_validate({"scene": scene, "order_no": ORDER_NO, "items": items})
    assert (await comp.service.quote(body)).amount == amount


async def test_the_calculator_refuses_scenes_without_a_standard(comp: Compensation) -> None:
    body = QuoteBody.model_validate({"scene": "complaint", "order_no": ORDER_NO})
    await refused("validation_failed", comp.service.quote(body))


async def test_from_a_chat_the_phone_comes_from_the_session_for_its_agents_only(
    comp: Compensation, settings: Settings, db: AsyncEngine
) -> None:
    await add_session(db, "S20261123-000007", "ag1", customer_id="c1")
    await add_session(db, "S20261123-000008", "ag1")  # an anonymous visitor
    body = order_body(customer_phone=None, session_id="S20261123-000007")
    order = await comp.service.create(body, as_(settings, "ag1"))
    assert order.customer_phone == "13800138000" and order.session_id == "S20261123-000007"
    await refused("forbidden", comp.service.create(body, as_(settings, "ag2")))
    anonymous = order_body(customer_phone=None, session_id="S20261123-000008")
    err = await refused("validation_failed", comp.service.create(anonymous, as_(settings, "ag1")))
    assert "customer_phone" in err.message
    await refused(
        "validation_failed",
        comp.service.create(order_body(session_id="S-nope"), as_(settings, "ag1")),
    )
