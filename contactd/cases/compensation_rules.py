"""Review policy as pure functions (no I/O): which levels an order needs, who may review
which level, the amount limits, the legal transitions and the calculator."""

from __future__ import annotations

from dataclasses import dataclass

from contactd.cases.compensation_config import (
    ANY,
    ApprovalFlow,
    CompensationPolicy,
    SceneConfig,
)
from contactd.cases.compensation_models import CompensationFields, Item, Stage, Status
from contactd.errors import ContactdError, ErrorCode

Action = str  # approve | reject | close | resubmit | pay


# status → the actions allowed in it (anything else is refused with invalid_state)
TRANSITIONS: dict[Status, frozenset[Action]] = {
    Status.pending_review: frozenset({"approve", "reject", "close"}),
    Status.rejected: frozenset({"resubmit", "close"}),
    Status.approved: frozenset({"pay"}),
    Status.paid: frozenset(),
    Status.closed: frozenset(),
}


def check_transition(status: Status, action: Action) -> None:
    if action not in TRANSITIONS[status]:
        raise ContactdError(
            ErrorCode.invalid_state,
            f"cannot {action} an order that is {status.value} ({status.label})",
            status=status.value,
        )


@dataclass(frozen=True)
class Route:
    needs_l1: bool
    needs_l2: bool

    @property
    def first_stage(self) -> Stage | None:
        if self.needs_l1:
            return "l1"
        return "l2" if self.needs_l2 else None

    def after(self, stage: Stage) -> Stage | None:
        """The stage after ``stage`` is approved (None = fully approved)."""
        return "l2" if stage == "l1" and self.needs_l2 else None


def _over(amount: int, threshold: int | None) -> bool:
    return threshold is not None and amount > threshold


def review_route(
    policy: CompensationPolicy, *, region: str, scene: str, role_group: str, amount: int
) -> Route:
    """The most specific matching rule decides (region, then scene, then role group)."""
    matching = [r for r in policy.rules if r.matches(region, scene, role_group)]
    rule = max(matching, key=lambda r: r.specificity)  # the catch-all always matches
    return Route(_over(amount, rule.l1_over), _over(amount, rule.l2_over))


def flow_for(policy: CompensationPolicy, region: str) -> ApprovalFlow:
    exact = [f for f in policy.flows if f.region == region]
    return exact[0] if exact else next(f for f in policy.flows if f.region == ANY)


def stage_roles(policy: CompensationPolicy, region: str, stage: Stage) -> tuple[str, ...]:
    flow = flow_for(policy, region)
    return flow.l1_roles if stage == "l1" else flow.l2_roles


def check_reviewer(
    policy: CompensationPolicy,
    *,
    region: str,
    stage: Stage,
    amount: int,
    role: str | None,
    is_creator: bool,
    approving: bool,
) -> None:
    """Maker-checker, the approval flow and (for approvals) the role's amount limit."""
    if is_creator:
        raise ContactdError(ErrorCode.own_order, "nobody may review an order they created")
    roles = stage_roles(policy, region, stage)
    if role not in roles:
        level = "business (L1)" if stage == "l1" else "finance (L2)"
        raise ContactdError(
            ErrorCode.not_your_stage,
            f"{level} review in region {region!r} is for the roles: {', '.join(roles)}",
            stage=stage,
        )
    if approving:
        limit = policy.reviewer_limits.get(role, 0)
        if amount > limit:
            raise ContactdError(
                ErrorCode.over_amount_limit,
                f"the role {role!r} may approve up to {limit} fen; this order is {amount}",
                limit=limit,
            )


def check_fields(policy: CompensationPolicy, fields: CompensationFields) -> SceneConfig:
    """Scene known, asset allowed in it, after-sales number where needed, amount in range."""
    scene = policy.scene(fields.scene)
    if scene is None:
        raise ContactdError(
            ErrorCode.validation_failed,
            f"unknown scene {fields.scene!r}",
            known=", ".join(s.id for s in policy.scenes),
        )
    if fields.asset_type not in scene.assets:
        allowed = ", ".join(a.value for a in scene.assets)
        raise ContactdError(
            ErrorCode.asset_not_allowed,
            f"the scene {scene.id!r} pays only: {allowed}",
        )
    if scene.after_sales and not fields.after_sales_no:
        raise ContactdError(
            ErrorCode.validation_failed, f"the scene {scene.id!r} needs after_sales_no"
        )
    if fields.amount > policy.max_amount:
        raise ContactdError(
            ErrorCode.validation_failed,
            f"the amount is above the maximum of {policy.max_amount} fen per order",
        )
    return scene


def check_status_filter(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError as exc:
        raise ContactdError(
            ErrorCode.validation_failed,
            f"status must be one of {', '.join(s.value for s in Status)}",
        ) from exc


def quote(policy: CompensationPolicy, scene: str, basis: int) -> tuple[int, str]:
    """The calculator's suggested amount for ``basis`` fen of affected items."""
    rule = next((c for c in policy.calculator if c.scene == scene), None)
    if rule is None:
        raise ContactdError(
            ErrorCode.validation_failed,
            f"the scene {scene!r} has no standard calculation; enter the amount",
        )
    raw = rule.fixed + basis * rule.percent // 100
    amount = min(max(raw, rule.min), rule.max, policy.max_amount)
    text = f"{rule.fixed} fen + {rule.percent}% of {basis} fen, within [{rule.min}, {rule.max}]"
    return amount, text


def basis_of(items: list[Item]) -> int:
    return sum(i.amount for i in items)
