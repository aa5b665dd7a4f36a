"""Configuration of compensation orders (no I/O): scenes, review rules, approval flows,
the calculator, reviewer limits (the *policy*, also editable through the admin API), and
the payout, webhook and notifier connectors (file and environment only).

Money is integer fen (1/100 yuan) everywhere.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

SCENE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
ANY = "*"
MAX_ORDER_AMOUNT = 100_000_000  # ¥1,000,000: a hard ceiling no configuration lifts


class AssetType(StrEnum):
    coupon = "coupon"
    cash = "cash"
    balance = "balance"

    @property
    def label(self) -> str:
        return _ASSET_LABELS[self]


_ASSET_LABELS = {AssetType.coupon: "优惠券", AssetType.cash: "现金", AssetType.balance: "余额"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneConfig(_Frozen):
    """A second-level scene (二级场景) under its first-level group, with the assets it may
    pay. ``after_sales`` scenes need an after-sales number on the order."""

    id: str = Field(pattern=SCENE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=60)
    group: str = Field(pattern=SCENE_ID_PATTERN, description="first-level scene id")
    group_name: str = Field(min_length=1, max_length=60)
    assets: tuple[AssetType, ...] = Field(min_length=1)
    after_sales: bool = False


class ReviewRule(_Frozen):
    """Whether an order needs business review (L1) and/or finance review (L2).

    An order needs L1 when its amount is above ``l1_over`` and L2 when above ``l2_over``
    (fen; ``None`` = never). The most specific rule matching region × scene × role group
    wins (``"*"`` matches anything; region beats scene beats role group on ties).
    """

    region: str = Field(default=ANY, min_length=1, max_length=32)
    scene: str = Field(default=ANY, min_length=1, max_length=48)
    role_group: str = Field(default=ANY, min_length=1, max_length=64)
    l1_over: int | None = Field(default=0, ge=0)
    l2_over: int | None = Field(default=10_000, ge=0)

    def matches(self, region: str, scene: str, role_group: str) -> bool:
        return (
            self.region in (ANY, region)
            and self.scene in (ANY, scene)
            and self.role_group in (ANY, role_group)
        )

    @property
    def specificity(self) -> tuple[bool, bool, bool]:
        return (self.region != ANY, self.scene != ANY, self.role_group != ANY)


class ApprovalFlow(_Frozen):
    """Which roles review each level in a region (``"*"`` = the platform default)."""

    region: str = Field(default=ANY, min_length=1, max_length=32)
    l1_roles: tuple[str, ...] = Field(min_length=1)
    l2_roles: tuple[str, ...] = Field(min_length=1)


class CalculatorRule(_Frozen):
    """Suggested amount for a standard defect scene: ``fixed`` plus ``percent`` of what
    the customer paid for the affected items, kept within ``[min, max]``."""

    scene: str = Field(pattern=SCENE_ID_PATTERN)
    percent: int = Field(default=0, ge=0, le=100)
    fixed: int = Field(default=0, ge=0)
    min: int = Field(default=0, ge=0)
    max: int = Field(default=MAX_ORDER_AMOUNT, ge=0)


class CompensationPolicy(_Frozen):
    scenes: tuple[SceneConfig, ...] = Field(min_length=1)
    rules: tuple[ReviewRule, ...] = Field(min_length=1)
    flows: tuple[ApprovalFlow, ...] = Field(min_length=1)
    calculator: tuple[CalculatorRule, ...] = ()
    reviewer_limits: dict[str, int] = Field(
        default_factory=dict, description="role → the largest amount (fen) it may approve"
    )
    max_amount: int = Field(default=1_000_000, ge=1, le=MAX_ORDER_AMOUNT)

    @model_validator(mode="after")
    def _check(self) -> CompensationPolicy:
        ids = [s.id for s in self.scenes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"scene ids must be unique, repeated: {', '.join(dupes)}")
        for rule in self.rules:
            if rule.scene != ANY and rule.scene not in ids:
                raise ValueError(f"review rule names unknown scene {rule.scene!r}")
        for calc in self.calculator:
            if calc.scene not in ids:
                raise ValueError(f"calculator names unknown scene {calc.scene!r}")
            if calc.min > calc.max:
                raise ValueError(f"calculator for {calc.scene!r}: min is above max")
        if not any(r.region == r.scene == r.role_group == ANY for r in self.rules):
            raise ValueError('review rules need a catch-all rule (region, scene, role_group "*")')
        if not any(f.region == ANY for f in self.flows):
            raise ValueError('approval flows need a platform flow (region "*")')
        return self

    def scene(self, scene_id: str) -> SceneConfig | None:
        return next((s for s in self.scenes if s.id == scene_id), None)


def _scene(
    id_: str, name: str, group: str, group_name: str, assets: str, *, after_sales: bool = False
) -> SceneConfig:
    return SceneConfig(
        id=id_,
        name=name,
        group=group,
        group_name=group_name,
        assets=tuple(AssetType(a) for a in assets.split()),
        after_sales=after_sales,
    )


DEFAULT_POLICY = CompensationPolicy(
    scenes=(
        _scene("defect", "质量瑕疵 Defect", "quality", "商品质量 Quality", "coupon balance cash"),
        _scene("damaged", "运输破损 Damaged", "quality", "商品质量 Quality", "coupon balance cash"),
        _scene(
            "late", "配送超时 Late delivery", "logistics", "物流问题 Logistics", "coupon balance"
        ),
        _scene("lost", "丢件 Lost parcel", "logistics", "物流问题 Logistics", "balance cash"),
        _scene(
            "coupon_expired",
            "退货后优惠券过期 Coupon expired after return",
            "after_sales",
            "售后补偿 After-sales",
            "coupon",
            after_sales=True,
        ),
        _scene(
            "price_protect",
            "价保 Price protection",
            "after_sales",
            "售后补偿 After-sales",
            "balance cash",
            after_sales=True,
        ),
        _scene("complaint", "服务投诉 Complaint", "service", "服务体验 Service", "coupon balance"),
    ),
    rules=(
        ReviewRule(l1_over=0, l2_over=10_000),  # everything L1; above ¥100 finance too
        ReviewRule(scene="coupon_expired", l1_over=2_000, l2_over=None),  # ≤ ¥20: no review
    ),
    flows=(
        ApprovalFlow(l1_roles=("reviewer", "supervisor", "admin"), l2_roles=("finance", "admin")),
    ),
    calculator=(
        CalculatorRule(scene="defect", percent=30, min=500, max=20_000),
        CalculatorRule(scene="damaged", percent=50, min=1_000, max=50_000),
        CalculatorRule(scene="late", fixed=1_000),
    ),
    reviewer_limits={
        "supervisor": 20_000,
        "reviewer": 50_000,
        "finance": 10_000_000,
        "admin": 10_000_000,
    },
)


ConnectorKind = Literal["embedded", "http"]


class PayoutSettings(_Frozen):
    """How approved orders are paid. ``embedded`` = the internal ledger (balance, cash)
    and coupon table; ``http`` = POST to ``http_url`` with the payout id as
    ``Idempotency-Key``."""

    coupon: ConnectorKind = "embedded"
    balance: ConnectorKind = "embedded"
    cash: ConnectorKind = "embedded"
    http_url: str | None = Field(default=None, max_length=500)
    http_secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_s: float = Field(default=2.0, gt=0, le=3600, description="first retry delay")
    backoff_max_s: float = Field(default=600.0, gt=0, le=86400)
    poll_s: float = Field(default=1.0, gt=0, le=60)
    lease_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="a claimed job is retried by another worker after this long (a crashed worker)",
    )
    coupon_valid_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _http_needs_url(self) -> PayoutSettings:
        uses_http = "http" in (self.coupon, self.balance, self.cash)
        if uses_http and not (self.http_url or "").startswith(("http://", "https://")):
            raise ValueError("an http payout connector needs http_url (http:// or https://)")
        return self

    def connector(self, asset: AssetType) -> ConnectorKind:
        kind: ConnectorKind = getattr(self, asset.value)
        return kind


WEBHOOK_EVENTS = (
    "compensation.created",
    "compensation.reviewed",
    "compensation.approved",
    "compensation.rejected",
    "compensation.resubmitted",
    "compensation.closed",
    "compensation.paid",
    "compensation.payout_failed",
)


class WebhookTarget(_Frozen):
    """A subscriber: status changes are POSTed to ``url``, signed with ``secret``."""

    url: str = Field(pattern=r"^https?://", max_length=500)
    secret: SecretStr
    events: tuple[str, ...] = WEBHOOK_EVENTS

    @model_validator(mode="after")
    def _known_events(self) -> WebhookTarget:
        unknown = sorted(set(self.events) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(f"unknown webhook events: {', '.join(unknown)}")
        return self


class NotifierSettings(_Frozen):
    """Customer notifications: the widget (live) and, when ``webhook_url`` is set, an
    SMS / app-push / WeCom gateway that receives ``{to, template, params}``. Staff
    notifications (an order waiting for a role's review; the creator's order approved,
    rejected, paid) go to ``staff_webhook_url`` (e.g. a WeCom / e-mail gateway) when set,
    besides the live push in the workspace."""

    widget: bool = True
    webhook_url: str | None = Field(default=None, pattern=r"^https?://", max_length=500)
    webhook_secret: SecretStr | None = None
    staff_webhook_url: str | None = Field(default=None, pattern=r"^https?://", max_length=500)
    staff_webhook_secret: SecretStr | None = None


class CompensationSettings(_Frozen):
    """``[compensation]`` in the config file."""

    policy: CompensationPolicy = DEFAULT_POLICY
    payout: PayoutSettings = PayoutSettings()
    webhooks: tuple[WebhookTarget, ...] = ()
    notifier: NotifierSettings = NotifierSettings()
    outbox_max_attempts: int = Field(default=10, ge=1, le=100)
    idempotency_ttl_s: int = Field(default=86_400, ge=60, description="keys kept this long")
