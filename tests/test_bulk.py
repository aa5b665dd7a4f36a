"""Many rows in one statement on SQLite (storage/bulk): stored as SQLAlchemy stores them,
and the driver's errors raised as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from contactd.storage.bulk import insert_rows
from contactd.storage.tables import Json

_meta = sa.MetaData()
_things = sa.Table(
    "things",
    _meta,
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("n", sa.Integer, nullable=True),
    sa.Column("doc", Json, nullable=True),
)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    _meta.create_all(engine)
    with engine.connect() as c:
        yield c
    engine.dispose()


def test_rows_read_back_as_sqlalchemy_wrote_them(conn: sa.Connection) -> None:
    rows = [{"id": f"r{i}", "n": i, "doc": {"i": i, "tags": ["a"]}} for i in range(400)]
    rows.append({"id": "empty"})  # a column left out is NULL
    insert_rows(conn, _things, rows)
    got = {r.id: (r.n, r.doc) for r in conn.execute(sa.select(_things))}
    assert len(got) == 401
    assert got["r7"] == (7, {"i": 7, "tags": ["a"]})
    assert got["empty"] == (None, None)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(conn: sa.Connection) -> None:
    insert_rows(conn, _things, [{"id": "a", "n": 1}])
    with pytest.raises(sa_exc.IntegrityError) as caught:
        insert_rows(conn, _things, [{"id": "b", "n": 2}, {"id": "a", "n": 3}])
    assert "UNIQUE" in str(caught.value.orig)
    assert caught.value.statement is not None and "INSERT INTO things" in caught.value.statement
    insert_rows(conn, _things, [{"id": "c", "n": 4}])  # the connection is still usable
    assert conn.execute(sa.select(sa.func.count()).select_from(_things)).scalar() == 2
