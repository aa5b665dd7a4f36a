"""Schemathesis against the ticket, dashboard, audit-export and widget-ticket operations of
a real ``contactd serve`` (the browser tests' server; no browser needed): inputs generated
from each operation's schema, sent as the admin and as an agent; no answer may be a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import Server
from tests.browser.fuzz_helpers import run_schemathesis

PATHS = r"^/api/v1/(tickets|dashboard|audit/export|im/tickets)"


@pytest.mark.parametrize("who", ["admin", "agent1"])
def test_ticket_operations_never_get_a_server_error(
    server: Server, who: str, tmp_path: Path
) -> None:
    selection = ["--include-path-regex", PATHS]
    tested = run_schemathesis(server, who, "tickets", selection, seed=20261124, workdir=tmp_path)
    assert tested >= 18  # every ticket, dashboard, audit-export and widget-ticket operation
