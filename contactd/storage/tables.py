"""SQL tables (SQLAlchemy Core). One code path for SQLite and PostgreSQL.

Every timestamp is an integer of milliseconds since the epoch (UTC), the same unit as
``Clock.now_ms()``; models turn them into tz-aware datetimes. JSON columns are ``JSON``
on SQLite and ``JSONB`` on PostgreSQL. The schema itself is created by the alembic
migrations in ``contactd/storage/migrations``; ``tests/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

Millis = sa.BigInteger
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY, so BIGINT ids need a variant
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "staff_id",
        sa.Integer,
        sa.ForeignKey("staff.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=False),
    sa.Column("revoked_at", Millis, nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column(
        "created_by", sa.Integer, sa.ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("revoked_at", Millis, nullable=True),
    sa.Column("last_used_at", Millis, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Millis, nullable=False, index=True),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True, index=True),
    sa.Column("actor_name", sa.String(120), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("before", Json, nullable=True),
    sa.Column("after", Json, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Index(None, "target_type", "target_id"),
)


# directory (embedded store: customers, products, orders) ------------------------------
# Money columns are integer fen (1/100 yuan). An order's items and address are JSON; its
# logistics are columns so a tracking number can be indexed later.
dir_customers = sa.Table(
    "dir_customers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False, index=True),
    sa.Column("member_level", sa.String(16), nullable=False),
    sa.Column("province", sa.String(32), nullable=True),
    sa.Column("city", sa.String(32), nullable=True),
    sa.Column("gender", sa.String(8), nullable=False),
    sa.Column("birth_year", sa.Integer, nullable=True),
    sa.Column("registered_at", Millis, nullable=False),
    sa.Column("tags", Json, nullable=False),
    sa.Column("vip", sa.Boolean, nullable=False),
)

dir_products = sa.Table(
    "dir_products",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("category", sa.String(32), nullable=True),
)

dir_orders = sa.Table(
    "dir_orders",
    metadata,
    sa.Column("order_no", sa.String(64), primary_key=True),
    sa.Column(
        "customer_id",
        sa.String(64),
        sa.ForeignKey("dir_customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("items", Json, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("paid_at", Millis, nullable=True),
    sa.Column("shipped_at", Millis, nullable=True),
    sa.Column("delivered_at", Millis, nullable=True),
    sa.Column("finished_at", Millis, nullable=True),
    sa.Column("carrier", sa.String(32), nullable=True),
    sa.Column("tracking_no", sa.String(64), nullable=True),
    sa.Column("logistics_event", sa.String(500), nullable=True),
    sa.Column("logistics_event_at", Millis, nullable=True),
    sa.Column("address", Json, nullable=True),
    sa.Index(None, "customer_id", "created_at"),
)


# --- service sessions (contactd/sessions) ----------------------------------------------

service_sessions = sa.Table(
    "service_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the service number S20261123-000042
    sa.Column("contact_id", sa.String(64), nullable=False),  # current routing contact
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("entry_point", sa.String(64), nullable=False),
    sa.Column("queue_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("visitor_id", sa.String(64), nullable=True),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("customer_name", sa.String(120), nullable=True),
    sa.Column("customer_phone", sa.String(32), nullable=True),
    sa.Column("order_no", sa.String(64), nullable=True),
    sa.Column("agent_id", sa.String(64), nullable=True),
    sa.Column("agent_name", sa.String(120), nullable=True),
    sa.Column("agents", Json, nullable=False),  # every agent who accepted it, in order
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("queued_at", Millis, nullable=True),
    sa.Column("offered_at", Millis, nullable=True),
    sa.Column("accepted_at", Millis, nullable=True),
    sa.Column("first_response_at", Millis, nullable=True),
    sa.Column("ended_at", Millis, nullable=True),
    sa.Column("end_reason", sa.String(32), nullable=True),
    sa.Column("disposition", sa.String(64), nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("rating_comment", sa.String(1000), nullable=True),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("transfers", sa.Integer, nullable=False),
    sa.Column("awaiting_reply_since", Millis, nullable=True),  # oldest unanswered customer msg
    sa.Column("responses", sa.Integer, nullable=False),
    sa.Column("response_total_ms", Millis, nullable=False),
    sa.Column("meta", Json, nullable=True),
    sa.Index(None, "created_at"),
    sa.Index(None, "customer_id", "created_at"),
    sa.Index(None, "visitor_id", "state"),
    sa.Index(None, "customer_phone"),
    sa.Index(None, "order_no"),
    sa.Index(None, "agent_id", "created_at"),
)

session_messages = sa.Table(
    "session_messages",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("service_sessions.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("client_msg_id", sa.String(64), nullable=False),
    sa.Column("sender_type", sa.String(16), nullable=False),
    sa.Column("sender_id", sa.String(64), nullable=True),
    sa.Column("sender_name", sa.String(120), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("attachment", Json, nullable=True),
    sa.Column("order_card", Json, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.UniqueConstraint("session_id", "seq"),
    sa.UniqueConstraint("session_id", "client_msg_id"),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("service_sessions.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("uploaded_by", sa.String(80), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

# --- monitor ---
# Every routing event that a metric counts, as it happened (one row per event). Reports and
# the live monitor read these rows; docs/metrics.md defines what is computed from them.
monitor_events = sa.Table(
    "monitor_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Millis, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("queue_id", sa.String(64), nullable=True),
    sa.Column("agent_id", sa.String(64), nullable=True),
    sa.Column("contact_id", sa.String(64), nullable=True),
    sa.Column("value_ms", Millis, nullable=True),  # waited / handled / wrap-up time
    sa.Column("detail", sa.String(64), nullable=True),  # reason, target queue, new state
    sa.Column("previous", sa.String(16), nullable=True),  # agent state before a change
    sa.Index(None, "at"),
    sa.Index(None, "agent_id", "at"),
)


# --- bot (contactd/channels/bot) ------------------------------------------------------
# The knowledge base the bot answers from, and the self-service requests it records
# (refund, change of delivery address) until an agent or the case module takes them up.

bot_faqs = sa.Table(
    "bot_faqs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("question", sa.String(300), nullable=False),
    sa.Column("variants", Json, nullable=False),  # other ways people ask it
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("tags", Json, nullable=False),
    sa.Column("lang", sa.String(8), nullable=False),
    sa.Column("suggested", sa.Boolean, nullable=False),  # offered as a chip at the start
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Column("helpful", sa.Integer, nullable=False),
    sa.Column("unhelpful", sa.Integer, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=True),
)

bot_requests = sa.Table(
    "bot_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # R20261123-<random>
    sa.Column("kind", sa.String(24), nullable=False),  # refund | address_change
    sa.Column("session_id", sa.String(32), sa.ForeignKey("service_sessions.id"), nullable=False),
    sa.Column("order_no", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("details", Json, nullable=False),
    # recorded | ticket_pending | ticket_opened | ticket_failed | handled
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("ticket_id", sa.String(64), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("handled_by", sa.String(120), nullable=True),  # migration 0010
    sa.Column("handled_at", Millis, nullable=True),
    sa.Column("handled_note", sa.String(1000), nullable=True),
    sa.Index(None, "order_no", "kind"),
    sa.Index(None, "session_id"),
    sa.Index(None, "status", "created_at"),  # the ticket retries (migration 0009)
)


# --- voice (IVR calls, contactd/channels/ivr) -------------------------------------------

ivr_calls = sa.Table(
    "ivr_calls",
    metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),  # the IVR platform's call id
    sa.Column("caller", sa.String(32), nullable=False),
    sa.Column("dialled", sa.String(32), nullable=False),
    sa.Column("ivr_path", sa.String(64), nullable=True),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("session_id", sa.String(32), nullable=True),  # set when it queued for an agent
    sa.Column("outcome", sa.String(16), nullable=False),  # self_service|agent|abandoned|voicemail
    sa.Column("menu_log", Json, nullable=False),  # [{menu, input, answer}] in order
    sa.Column("started_at", Millis, nullable=False),
    sa.Column("ended_at", Millis, nullable=False),
    sa.Index(None, "started_at"),
    sa.Index(None, "caller", "started_at"),
)

ivr_callbacks = sa.Table(
    "ivr_callbacks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False, unique=True),  # one per call
    sa.Column("caller", sa.String(32), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("session_id", sa.String(32), nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),  # menu|queue_full|overflow
    sa.Column("recording_url", sa.String(500), nullable=True),
    sa.Column("recording_s", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),  # open|done
    sa.Column("ticket_id", sa.String(64), nullable=True),  # once the case module took it
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "state", "created_at"),
)

# --- cases-money: compensation orders, payouts, ledger, outbox (contactd/cases) ---------
# Money is integer fen. ``version`` on an order is its optimistic-lock counter: every change
# is ``UPDATE ... WHERE id = :id AND version = :seen`` and bumps it.

compensations = sa.Table(
    "compensations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # C20261123-0A1B2C3D
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(4), nullable=True),  # l1 | l2 while pending_review
    sa.Column("needs_l1", sa.Boolean, nullable=False),
    sa.Column("needs_l2", sa.Boolean, nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("customer_phone", sa.String(32), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("order_no", sa.String(64), nullable=True),
    sa.Column("after_sales_no", sa.String(64), nullable=True),
    sa.Column("items", Json, nullable=False),
    sa.Column("scene_group", sa.String(48), nullable=False),
    sa.Column("scene", sa.String(48), nullable=False),
    sa.Column("asset_type", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attachments", Json, nullable=False),
    sa.Column("session_id", sa.String(32), nullable=True),
    sa.Column("creator_kind", sa.String(16), nullable=False),
    sa.Column("creator_id", sa.String(64), nullable=False),
    sa.Column("creator_name", sa.String(120), nullable=False),
    sa.Column("creator_role", sa.String(64), nullable=False),
    sa.Column("submissions", sa.Integer, nullable=False),
    sa.Column("l1_by", sa.String(120), nullable=True),
    sa.Column("l1_at", Millis, nullable=True),
    sa.Column("l2_by", sa.String(120), nullable=True),
    sa.Column("l2_at", Millis, nullable=True),
    sa.Column("rejected_by", sa.String(120), nullable=True),
    sa.Column("reject_reason", sa.String(500), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("approved_at", Millis, nullable=True),
    sa.Column("paid_at", Millis, nullable=True),
    sa.Column("closed_at", Millis, nullable=True),
    sa.Column("payout_id", sa.String(40), nullable=True, unique=True),
    sa.Column("payout_state", sa.String(16), nullable=True),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "creator_id", "created_at"),
    sa.Index(None, "scene", "created_at"),
    sa.Index(None, "customer_phone"),
    sa.Index(None, "session_id"),
)

# the review policy when changed through the admin API (one row; absent = the file's)
compensation_policy = sa.Table(
    "compensation_policy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("updated_by", sa.String(120), nullable=False),
)

# one payout per approved order; its id is fixed before any connector is called
payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "compensation_id",
        sa.String(32),
        sa.ForeignKey("compensations.id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("asset_type", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("account", sa.String(80), nullable=False),  # customer id or phone:<digits>
    sa.Column("connector", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | succeeded | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Millis, nullable=False),
    sa.Column("lease_until", Millis, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("external_ref", sa.String(120), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("paid_at", Millis, nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
)

# the internal ledger: accounts (customer sub-accounts never below zero), journal entries
# grouped in transactions that each sum to zero; ``ref`` makes a posting idempotent
ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("id", sa.String(120), primary_key=True),  # cust:<account>:available
    sa.Column("owner", sa.String(80), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("allow_negative", sa.Boolean, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.CheckConstraint("allow_negative OR balance >= 0", name="balance_not_negative"),
)

ledger_txns = sa.Table(
    "ledger_txns",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ref", sa.String(80), nullable=False, unique=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("memo", sa.String(200), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("txn_id", sa.BigInteger, sa.ForeignKey("ledger_txns.id"), nullable=False, index=True),
    sa.Column("account_id", sa.String(120), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # + credit to the account, - debit
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "account_id", "id"),
)

coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("payout_id", sa.String(40), nullable=False, unique=True),
    sa.Column("account", sa.String(80), nullable=False, index=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("threshold", sa.BigInteger, nullable=False),  # 0 = no minimum spend
    sa.Column("issued_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=False),
    sa.Column("used_at", Millis, nullable=True),
)

# outgoing messages (signed webhooks, customer notifications), delivered by a worker with
# retries; the rows are the delivery log
case_outbox = sa.Table(
    "case_outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # webhook | notify_widget | notify_hook
    sa.Column("topic", sa.String(48), nullable=False),  # e.g. compensation.paid
    sa.Column("target", sa.String(500), nullable=False),  # url, or the widget session
    sa.Column("subject_id", sa.String(32), nullable=False),  # the compensation id
    sa.Column("payload", Json, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Millis, nullable=False),
    sa.Column("lease_until", Millis, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("delivered_at", Millis, nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
    sa.Index(None, "subject_id"),
)

# Idempotency-Key records of the open API: one per (caller, key)
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("principal", sa.String(80), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # started | done
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("response", Json, nullable=True),
    sa.Column("created_at", Millis, nullable=False, index=True),
)
# --- end cases-money ---


# --- cases: after-sales tickets (contactd/cases/tickets_*) ------------------------------
# ``owner_id`` NULL = in the to-be-claimed pool of ``queue_id``; ``version`` is the
# optimistic-lock counter every change checks and bumps. Money is integer fen.

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # T20261123-0A1B2C3D
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(24), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("queue_id", sa.String(64), nullable=False),
    sa.Column("owner_id", sa.String(64), nullable=True),
    sa.Column("owner_name", sa.String(120), nullable=True),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("customer_name", sa.String(120), nullable=True),
    sa.Column("customer_phone", sa.String(32), nullable=True),
    sa.Column("visitor_id", sa.String(64), nullable=True),
    sa.Column("order_no", sa.String(64), nullable=True),
    sa.Column("session_id", sa.String(32), nullable=True),
    sa.Column("items", Json, nullable=False),
    sa.Column("attachments", Json, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("auto_rule", sa.String(24), nullable=True),
    sa.Column("urges", sa.Integer, nullable=False),
    sa.Column("last_urged_at", Millis, nullable=True),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("claimed_at", Millis, nullable=True),
    sa.Column("first_action_at", Millis, nullable=True),
    sa.Column("closed_at", Millis, nullable=True),
    sa.Column("stall_warned_at", Millis, nullable=True),
    sa.Index(None, "queue_id", "owner_id", "closed_at"),
    sa.Index(None, "owner_id", "closed_at"),
    sa.Index(None, "customer_id"),
    sa.Index(None, "visitor_id"),
    sa.Index(None, "session_id"),
    sa.Index(None, "created_at"),
)

# the timeline: one row per step (who / when / what), append-only
ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.String(32), sa.ForeignKey("tickets.id"), nullable=False),
    sa.Column("at", Millis, nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("actor_name", sa.String(120), nullable=True),
    sa.Column("from_state", sa.String(24), nullable=True),
    sa.Column("to_state", sa.String(24), nullable=True),
    sa.Column("note", sa.String(1000), nullable=True),
    sa.Column("data", Json, nullable=True),
    sa.Index(None, "ticket_id", "id"),
)
# --- end cases ---
