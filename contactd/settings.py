"""Settings: embedded defaults, then ``config/*.toml``, then ``CONTACTD_*`` env vars.

Nested values use ``__`` in env names, e.g. ``CONTACTD_ROUTING__HEARTBEAT_TTL_S=20``.
Every field is validated; ``contactd check-config`` prints the problems in plain words.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contactd.cases.compensation_config import CompensationSettings  # --- cases-money ---
from contactd.cases.tickets_config import TicketSettings  # --- cases ---
from contactd.directory.models import DirectorySettings

Channel = Literal["chat", "voice"]
Strategy = Literal["idle", "round_robin", "designated"]
QUEUE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
OVERFLOW_TO_MESSAGE = "message"

ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        "agent.work",  # log into routing, take offers, handle own contacts
        "agent.state.any",  # change another agent's state
        "agents.view",
        "queues.view",
        "contacts.create",
        "contacts.cancel",
        "contacts.view",
        "pii.view",
        "monitor.view",
        "staff.manage",
        "apikeys.manage",
        "audit.view",
        # --- monitor ---
        "monitor.act",  # supervisor actions: agent state, drain, move, force-offer
        "monitor.join",  # join a chat silently or visibly
        "reports.view",
        # --- bot ---
        "kb.manage",  # edit the bot's knowledge base (FAQ entries)
    }
)
# --- cases-money: compensation orders ---
COMPENSATION_PERMISSIONS: frozenset[str] = frozenset(
    {
        "compensation.create",  # open orders (own ones are always visible to their creator)
        "compensation.view",  # see every order
        "compensation.review",  # approve / reject / close at the levels the flow gives the role
        "compensation.pay",  # finance: payouts, retries, the ledger
        "compensation.configure",  # scenes, rules, flows, limits
    }
)
ALL_PERMISSIONS = ALL_PERMISSIONS | COMPENSATION_PERMISSIONS
# --- end cases-money ---

DEFAULT_ROLES: dict[str, list[str]] = {
    "agent": ["agent.work", "queues.view"],
    "senior_agent": ["agent.work", "queues.view", "contacts.view"],
    "team_lead": [
        "agent.work",
        "queues.view",
        "agents.view",
        "contacts.view",
        "agent.state.any",
        "monitor.view",
    ],
    "supervisor": [
        "agent.work",
        "queues.view",
        "agents.view",
        "contacts.view",
        "agent.state.any",
        "monitor.view",
        "contacts.create",
        "contacts.cancel",
        "pii.view",
        "kb.manage",  # --- bot ---
    ],
    "reviewer": ["queues.view"],
    "finance": ["queues.view"],
    "qa": ["queues.view", "agents.view", "contacts.view"],
    "admin": sorted(ALL_PERMISSIONS),
}
# --- monitor ---
_MONITOR_GRANTS: dict[str, tuple[str, ...]] = {
    "team_lead": ("monitor.act", "monitor.join", "reports.view"),
    "supervisor": ("monitor.act", "monitor.join", "reports.view"),
    "qa": ("monitor.join", "reports.view"),
}
for _role, _grant in _MONITOR_GRANTS.items():
    DEFAULT_ROLES[_role] = [*DEFAULT_ROLES[_role], *_grant]
# --- cases-money: who opens, reviews and pays compensation orders ---
for _role, _perms in {
    "agent": ["compensation.create"],
    "senior_agent": ["compensation.create"],
    "team_lead": ["compensation.create", "compensation.view"],
    "supervisor": ["compensation.create", "compensation.view", "compensation.review"],
    "reviewer": ["compensation.view", "compensation.review"],
    "finance": ["compensation.view", "compensation.review", "compensation.pay"],
}.items():
    DEFAULT_ROLES[_role] = sorted({*DEFAULT_ROLES[_role], *_perms})
# --- end cases-money ---

# --- cases: after-sales tickets and the dashboard ---
TICKET_PERMISSIONS: frozenset[str] = frozenset(
    {
        "tickets.create",  # open tickets (from a chat, or a system through the open API)
        "tickets.view",  # see every ticket, not only the pools one claims from and one's own
        "tickets.handle",  # act on tickets in one's own queue
        "tickets.claim",  # take a ticket from a pool
        "tickets.assign",  # give a ticket to someone
        "tickets.transfer",  # hand one's ticket (or anyone's, with tickets.assign) on
        "tickets.dispatch",  # move tickets between pools, send one back to its pool
        "dashboard.view",  # the case dashboard
    }
)
ALL_PERMISSIONS = ALL_PERMISSIONS | TICKET_PERMISSIONS
for _role, _perms in {
    "agent": ["tickets.create", "tickets.claim", "tickets.handle"],
    "senior_agent": ["tickets.create", "tickets.claim", "tickets.handle", "tickets.transfer"],
    "team_lead": sorted(TICKET_PERMISSIONS - {"tickets.dispatch"}),
    "supervisor": sorted(TICKET_PERMISSIONS),
    "reviewer": ["tickets.view", "tickets.claim", "tickets.handle"],
    "finance": ["tickets.view", "tickets.claim", "tickets.handle", "dashboard.view"],
    "qa": ["tickets.view", "dashboard.view"],
    "admin": sorted(TICKET_PERMISSIONS),
}.items():
    DEFAULT_ROLES[_role] = sorted({*DEFAULT_ROLES[_role], *_perms})
# --- end cases ---


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueConfig(_Frozen):
    id: str = Field(pattern=QUEUE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    channel: Channel = "chat"
    strategy: Strategy = "idle"
    fallback_strategy: Literal["idle", "round_robin"] = "idle"
    fallback_after_s: float = Field(default=60.0, ge=0, description="0 = wait indefinitely")
    max_waiting: int = Field(default=200, ge=1, le=1_000_000)
    offer_timeout_s: float = Field(default=20.0, gt=0, le=600)
    wrap_up_s: float = Field(default=10.0, ge=0, le=3600)
    max_wait_s: float | None = Field(default=None, gt=0)
    overflow_to: str | None = None
    max_no_answer: int = Field(default=3, ge=1, le=100)
    reoffer_after_s: float = Field(default=30.0, ge=0, le=3600)
    service_level_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _overflow_needs_wait(self) -> QueueConfig:
        if self.overflow_to is not None and self.max_wait_s is None:
            raise ValueError("overflow_to needs max_wait_s")
        if self.overflow_to == self.id:
            raise ValueError("a queue cannot overflow to itself")
        return self


class Capacity(_Frozen):
    chat: int = Field(default=3, ge=0, le=50)
    voice: int = Field(default=1, ge=0, le=1)


class RoutingSettings(_Frozen):
    heartbeat_ttl_s: float = Field(default=30.0, gt=0)
    disconnect_grace_s: float = Field(default=15.0, ge=0)
    sweep_interval_s: float = Field(default=0.25, gt=0, le=10)
    chat_during_voice: bool = False
    default_capacity: Capacity = Capacity()
    final_retention_s: float = Field(default=3600.0, gt=0)


class ImSettings(_Frozen):
    """The chat widget and the agent/customer sockets."""

    identity_secret: str | None = Field(
        default=None, description="HMAC key the host site signs customer identities with"
    )
    identity_max_age_s: int = Field(default=86400, gt=0)
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='origins allowed to open sockets; [] = same origin, ["*"] = any',
    )
    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    max_text_chars: int = Field(default=5000, ge=1)
    events_per_s: float = Field(default=10.0, gt=0, description="per connection, sustained")
    events_burst: int = Field(default=30, ge=1)
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upload_types: list[str] = Field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
        ]
    )
    customer_grace_s: float = Field(
        default=60.0, ge=0, description="a waiting customer who drops keeps their place this long"
    )
    entry_points: dict[str, str] = Field(
        default_factory=dict, description="entry point → queue, e.g. order_page = aftersales"
    )
    default_queue: str | None = Field(default=None, description="None = the first queue")
    customer_idle_warn_s: float = Field(
        default=180.0, ge=0, description="customer silent this long after the agent: a warning"
    )
    customer_idle_close_s: float = Field(
        default=300.0, ge=0, description="...and this long: the chat closes (reason timeout)"
    )
    agent_response_alert_s: float = Field(
        default=60.0, ge=0, description="customer waiting this long for a reply: alert"
    )
    vip_priority: int = Field(default=5, ge=0, le=9)
    sticky_within_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="a customer back within this long goes to the agent who served them "
        "last, if that agent is online in the chat's queue (0 = off)",
    )
    sticky_wait_s: float = Field(
        default=20.0, gt=0, description="...waiting this long for them when busy, then the queue"
    )


# --- monitor ---
class MonitorScope(_Frozen):
    """What one role sees on the live monitor and may act on; ``"*"`` = everything."""

    queues: list[str] = Field(default_factory=lambda: ["*"])
    teams: list[str] = Field(default_factory=lambda: ["*"])


class MonitorAlert(_Frozen):
    longest_wait_s: float = Field(default=60.0, gt=0, description="alert above this wait")
    service_level: float = Field(default=0.8, ge=0, le=1, description="alert below this SL")


class MonitorSettings(_Frozen):
    """Supervisor live monitor, reports and metric definitions (docs/metrics.md)."""

    short_abandon_s: float = Field(
        default=5.0, ge=0, description="abandons sooner than this are left out of SL/SL2"
    )
    push_interval_s: float = Field(
        default=0.5, gt=0, le=1.0, description="shortest gap between two live pushes"
    )
    teams: dict[str, list[str]] = Field(
        default_factory=dict, description="team name → agent usernames"
    )
    scopes: dict[str, MonitorScope] = Field(
        default_factory=dict, description="role → queues and teams it sees (unlisted: all)"
    )
    alerts: MonitorAlert = MonitorAlert()
    queue_alerts: dict[str, MonitorAlert] = Field(
        default_factory=dict, description="queue id → its own alert lines"
    )

    def alert_for(self, queue_id: str) -> MonitorAlert:
        return self.queue_alerts.get(queue_id, self.alerts)


# --- bot ---
class BotSettings(_Frozen):
    """The bot front line in chat (``[bot]``; see contactd/channels/bot)."""

    first_queues: list[str] = Field(
        default_factory=list,
        description="queues whose chats the bot answers first (bot-first); others human-first",
    )
    engine: Literal["faq", "webhook"] = Field(
        default="faq", description="faq = the built-in knowledge base; webhook = external bot"
    )
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(
        default=None, description="signs webhook calls (X-Contactd-Signature)"
    )
    webhook_timeout_s: float = Field(default=3.0, gt=0, le=30)
    handoff_words: list[str] = Field(
        default_factory=lambda: ["转人工", "人工", "human", "agent"],
        description="any of these in a message hands the chat to a person at once",
    )
    negative_words: list[str] = Field(
        default_factory=lambda: ["没用", "没有用", "不是这个", "not helpful", "useless"],
        description="negative feedback in words: hands over like the thumbs-down button",
    )
    greeting: dict[Literal["zh", "en"], str] = Field(
        default_factory=dict,
        description="the bot's first words per language (default: a built-in greeting)",
    )
    max_misses: int = Field(default=2, ge=1, le=10, description="misses in a row → a person")
    min_confidence: float = Field(
        default=0.45, gt=0, le=1, description="cosine similarity needed to answer"
    )
    suggest_floor: float = Field(
        default=0.12, gt=0, le=1, description="below this a FAQ is not even suggested"
    )
    suggestions: int = Field(default=4, ge=0, le=10)
    idle_close_s: float = Field(
        default=900.0, gt=0, description="a bot chat with no customer message this long ends"
    )

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> BotSettings:
        if self.engine == "webhook" and not self.webhook_url:
            raise ValueError("bot engine 'webhook' needs webhook_url")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError("bot webhook_url must start with http:// or https://")
        return self


# --- voice (IVR webhooks, contactd/channels/ivr) ---------------------------------------


class IvrSettings(_Frozen):
    """The phone channel: signed IVR webhooks (generic JSON and Twilio-compatible)."""

    secrets: list[SecretStr] = Field(
        default_factory=list,
        description="HMAC-SHA256 keys the IVR platform signs with; several while rotating",
    )
    tolerance_s: int = Field(default=300, ge=10, le=3600)
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="validates X-Twilio-Signature; None = Twilio adapter off"
    )
    public_url: str | None = Field(
        default=None,
        max_length=300,
        description="base URL the platform calls (behind a proxy), for Twilio signatures",
    )
    queue: str | None = Field(default=None, description="None = the first voice queue")
    numbers: dict[str, str] = Field(
        default_factory=dict, description="dialled number → queue: straight to an agent"
    )
    paths: dict[str, str] = Field(
        default_factory=dict, description="IVR path the platform chose → queue"
    )
    self_service: bool = Field(default=True, description="other calls hear the menu first")
    agent_endpoint: str = Field(
        default="client:{agent_id}",
        max_length=200,
        description="where to connect an agent: client:, sip: or a phone number template",
    )
    poll_s: int = Field(default=5, ge=1, le=60, description="hold-loop interval while queued")
    max_misses: int = Field(default=3, ge=1, le=10, description="bad inputs → an agent")
    voicemail_max_s: int = Field(default=120, ge=5, le=600)
    language: str = Field(default="zh-CN", max_length=16)
    event_ttl_s: int = Field(default=86400, ge=600)


DEFAULT_QUEUES: tuple[QueueConfig, ...] = (
    QueueConfig(id="presales", name="售前咨询 Pre-sales", strategy="idle"),
    QueueConfig(
        id="aftersales",
        name="售后服务 After-sales",
        strategy="round_robin",
        max_wait_s=600,
        overflow_to="message",
    ),
    QueueConfig(id="vip", name="VIP 专属 VIP desk", strategy="designated", fallback_after_s=30),
    QueueConfig(id="hotline", name="电话热线 Hotline", channel="voice", strategy="idle"),
)


DEFAULT_ENTRY_POINTS: dict[str, str] = {
    "order_page": "aftersales",
    "product_page": "presales",
    "home": "presales",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONTACTD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    site: str = Field(default="default", pattern=r"^[a-zA-Z0-9_-]{1,32}$")
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = Field(
        default=1,
        description="serving processes sharing the port (auto: one per CPU)",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="uvloop (cheaper wake-ups and socket calls) or asyncio"
    )
    redis_url: str | None = None
    database_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    token_ttl_s: int = Field(default=12 * 3600, ge=60)
    argon2_time_cost: int = Field(default=3, ge=1, le=20, description="password hashing passes")
    argon2_memory_kib: int = Field(default=65536, ge=1024, description="password hashing memory")
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    roles: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ROLES))
    queues: tuple[QueueConfig, ...] = DEFAULT_QUEUES
    routing: RoutingSettings = RoutingSettings()
    im: ImSettings = ImSettings()
    ivr: IvrSettings = IvrSettings()  # --- voice ---
    directory: DirectorySettings = DirectorySettings()
    monitor: MonitorSettings = MonitorSettings()  # --- monitor ---
    bot: BotSettings = BotSettings()  # --- bot ---
    tickets: TicketSettings = TicketSettings()  # --- cases ---
    compensation: CompensationSettings = CompensationSettings()  # --- cases-money ---
    timezone: str = Field(default="Asia/Shanghai", description="for service numbers and reports")
    secret_key: str | None = Field(
        default=None, description="signs visitor tokens; generated under data_dir when unset"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env beats the file (passed as init kwargs), which beats the defaults
        return (env_settings, init_settings)

    @model_validator(mode="before")
    @classmethod
    def _default_entry_points(cls, data: Any) -> Any:
        # the built-in queues come with the built-in entry points; a configuration that
        # defines its own queues defines its own entry points
        if isinstance(data, dict) and "queues" not in data and "im" not in data:
            data = {**data, "im": {"entry_points": dict(DEFAULT_ENTRY_POINTS)}}
        return data

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        ids = [q.id for q in self.queues]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"queue ids must be unique, repeated: {', '.join(dupes)}")
        for q in self.queues:
            if q.overflow_to not in (None, OVERFLOW_TO_MESSAGE) and q.overflow_to not in ids:
                raise ValueError(
                    f"queue {q.id!r} overflows to unknown queue {q.overflow_to!r} "
                    f"(use a queue id or {OVERFLOW_TO_MESSAGE!r})"
                )
        if self.im.default_queue is not None and self.im.default_queue not in ids:
            raise ValueError(f"im.default_queue {self.im.default_queue!r} is not a queue")
        for entry, queue in self.im.entry_points.items():
            if queue not in ids:
                raise ValueError(f"im.entry_points.{entry} names unknown queue {queue!r}")
        for queue in self.bot.first_queues:  # --- bot ---
            if queue not in ids:
                raise ValueError(f"bot.first_queues names unknown queue {queue!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        # --- monitor ---
        m = self.monitor
        for role, scope in m.scopes.items():
            for qid in scope.queues:
                if qid != "*" and qid not in ids:
                    raise ValueError(f"monitor.scopes.{role} names unknown queue {qid!r}")
            for team in scope.teams:
                if team != "*" and team not in m.teams:
                    raise ValueError(f"monitor.scopes.{role} names unknown team {team!r}")
        for qid in m.queue_alerts:
            if qid not in ids:
                raise ValueError(f"monitor.queue_alerts names unknown queue {qid!r}")
        for role, perms in self.roles.items():
            unknown = sorted(set(perms) - ALL_PERMISSIONS)
            if unknown:
                raise ValueError(f"role {role!r} has unknown permissions: {', '.join(unknown)}")
        return self

    # --- voice ---
    @model_validator(mode="after")
    def _check_ivr(self) -> Settings:
        ids = {q.id: q for q in self.queues}
        named = [("ivr.queue", self.ivr.queue)] if self.ivr.queue else []
        named += [(f"ivr.numbers.{k}", v) for k, v in self.ivr.numbers.items()]
        named += [(f"ivr.paths.{k}", v) for k, v in self.ivr.paths.items()]
        for where, queue_id in named:
            if queue_id not in ids:
                raise ValueError(f"{where} names unknown queue {queue_id!r}")
            if ids[queue_id].channel != "voice":
                raise ValueError(f"{where}: queue {queue_id!r} is not a voice queue")
        return self

    def voice_queue(self) -> str | None:
        """The queue calls go to unless a number or path says otherwise."""
        if self.ivr.queue:
            return self.ivr.queue
        return next((q.id for q in self.queues if q.channel == "voice"), None)

    def queue_for_entry(self, entry_point: str) -> str:
        mapped = self.im.entry_points.get(entry_point)
        return mapped or self.im.default_queue or self.queues[0].id

    def queue(self, queue_id: str) -> QueueConfig | None:
        return next((q for q in self.queues if q.id == queue_id), None)

    def permissions_of(self, role: str) -> frozenset[str]:
        return frozenset(self.roles.get(role, ()))

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'contactd.sqlite3'}"


class ConfigError(Exception):
    """The configuration cannot be used; the message says why, line by line."""


def _explain(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (``path`` or ``$CONTACTD_CONFIG``), apply env overrides, validate."""
    data: dict[str, Any] = {}
    if path is None and (env_path := os.environ.get("CONTACTD_CONFIG")):
        path = Path(env_path)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from exc
