"""Alembic environment. Migrations run only through ``contactd.storage.db.migrate()``,
which hands over an open connection in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from contactd.storage.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported; use `contactd migrate`")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through contactd.storage.db.migrate()")
    run_migrations(connection)


main()
