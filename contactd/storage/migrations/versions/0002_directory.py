"""Directory: the embedded store of customers, products and orders.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dir_customers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("member_level", sa.String(16), nullable=False),
        sa.Column("province", sa.String(32), nullable=True),
        sa.Column("city", sa.String(32), nullable=True),
        sa.Column("gender", sa.String(8), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("tags", JSON_TYPE, nullable=False),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dir_customers")),
    )
    op.create_index(op.f("ix_dir_customers_phone"), "dir_customers", ["phone"])
    op.create_table(
        "dir_products",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_dir_products")),
    )
    op.create_table(
        "dir_orders",
        sa.Column("order_no", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("items", JSON_TYPE, nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("shipped_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("tracking_no", sa.String(64), nullable=True),
        sa.Column("logistics_event", sa.String(500), nullable=True),
        sa.Column("logistics_event_at", sa.BigInteger(), nullable=True),
        sa.Column("address", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("order_no", name=op.f("pk_dir_orders")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["dir_customers.id"],
            name=op.f("fk_dir_orders_customer_id_dir_customers"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        op.f("ix_dir_orders_customer_id_created_at"), "dir_orders", ["customer_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dir_orders_customer_id_created_at"), table_name="dir_orders")
    op.drop_table("dir_orders")
    op.drop_table("dir_products")
    op.drop_index(op.f("ix_dir_customers_phone"), table_name="dir_customers")
    op.drop_table("dir_customers")
