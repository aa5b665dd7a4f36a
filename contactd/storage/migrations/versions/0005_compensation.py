"""Compensation orders, review policy, payouts, the internal ledger, coupons, the case
outbox (webhooks, customer notifications) and Idempotency-Key records (case module).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=48), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_outbox")),
    )
    op.create_index(
        op.f("ix_case_outbox_state_next_attempt_at"),
        "case_outbox",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_index(op.f("ix_case_outbox_subject_id"), "case_outbox", ["subject_id"], unique=False)
    op.create_table(
        "compensation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", JSON_TYPE, nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compensation_policy")),
    )
    op.create_table(
        "compensations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=4), nullable=True),
        sa.Column("needs_l1", sa.Boolean(), nullable=False),
        sa.Column("needs_l2", sa.Boolean(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("customer_phone", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("order_no", sa.String(length=64), nullable=True),
        sa.Column("after_sales_no", sa.String(length=64), nullable=True),
        sa.Column("items", JSON_TYPE, nullable=False),
        sa.Column("scene_group", sa.String(length=48), nullable=False),
        sa.Column("scene", sa.String(length=48), nullable=False),
        sa.Column("asset_type", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attachments", JSON_TYPE, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("creator_kind", sa.String(length=16), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("creator_name", sa.String(length=120), nullable=False),
        sa.Column("creator_role", sa.String(length=64), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("l1_by", sa.String(length=120), nullable=True),
        sa.Column("l1_at", sa.BigInteger(), nullable=True),
        sa.Column("l2_by", sa.String(length=120), nullable=True),
        sa.Column("l2_at", sa.BigInteger(), nullable=True),
        sa.Column("rejected_by", sa.String(length=120), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("approved_at", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("payout_id", sa.String(length=40), nullable=True),
        sa.Column("payout_state", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compensations")),
        sa.UniqueConstraint("payout_id", name=op.f("uq_compensations_payout_id")),
    )
    op.create_index(
        op.f("ix_compensations_creator_id_created_at"),
        "compensations",
        ["creator_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_compensations_customer_phone"), "compensations", ["customer_phone"], unique=False
    )
    op.create_index(
        op.f("ix_compensations_scene_created_at"),
        "compensations",
        ["scene", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_compensations_session_id"), "compensations", ["session_id"], unique=False
    )
    op.create_index(
        op.f("ix_compensations_status_created_at"),
        "compensations",
        ["status", "created_at"],
        unique=False,
    )
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_coupons")),
        sa.UniqueConstraint("payout_id", name=op.f("uq_coupons_payout_id")),
    )
    op.create_index(op.f("ix_coupons_account"), "coupons", ["account"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", JSON_TYPE, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "allow_negative OR balance >= 0", name=op.f("ck_ledger_accounts_balance_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    op.create_index(op.f("ix_ledger_accounts_owner"), "ledger_accounts", ["owner"], unique=False)
    op.create_table(
        "ledger_txns",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_txns")),
        sa.UniqueConstraint("ref", name=op.f("uq_ledger_txns_ref")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(length=120), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"], ["ledger_txns.id"], name=op.f("fk_ledger_entries_txn_id_ledger_txns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        op.f("ix_ledger_entries_account_id_id"),
        "ledger_entries",
        ["account_id", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_ledger_entries_txn_id"), "ledger_entries", ["txn_id"], unique=False)
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("compensation_id", sa.String(length=32), nullable=False),
        sa.Column("asset_type", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("connector", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("external_ref", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["compensation_id"],
            ["compensations.id"],
            name=op.f("fk_payouts_compensation_id_compensations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("compensation_id", name=op.f("uq_payouts_compensation_id")),
    )
    op.create_index(
        op.f("ix_payouts_state_next_attempt_at"),
        "payouts",
        ["state", "next_attempt_at"],
        unique=False,
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_index(op.f("ix_payouts_state_next_attempt_at"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_index(op.f("ix_ledger_entries_txn_id"), table_name="ledger_entries")
    op.drop_index(op.f("ix_ledger_entries_account_id_id"), table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_txns")
    op.drop_index(op.f("ix_ledger_accounts_owner"), table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_coupons_account"), table_name="coupons")
    op.drop_table("coupons")
    op.drop_index(op.f("ix_compensations_status_created_at"), table_name="compensations")
    op.drop_index(op.f("ix_compensations_session_id"), table_name="compensations")
    op.drop_index(op.f("ix_compensations_scene_created_at"), table_name="compensations")
    op.drop_index(op.f("ix_compensations_customer_phone"), table_name="compensations")
    op.drop_index(op.f("ix_compensations_creator_id_created_at"), table_name="compensations")
    op.drop_table("compensations")
    op.drop_table("compensation_policy")
    op.drop_index(op.f("ix_case_outbox_subject_id"), table_name="case_outbox")
    op.drop_index(op.f("ix_case_outbox_state_next_attempt_at"), table_name="case_outbox")
    op.drop_table("case_outbox")
    # ### end Alembic commands ###
