"""Schemathesis against the OpenAPI document of a real ``contactd serve`` (the same server
the browser tests use): inputs generated from every compensation, payout and case-config
operation's schema, sent as the admin and as an agent; no answer may be a 5xx. Lives beside
the browser tests for their server fixture; it needs no browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import Server
from tests.browser.fuzz_helpers import run_schemathesis

TAGS = ("compensation", "payouts", "case-config")


@pytest.mark.parametrize("who", ["admin", "agent1"])
def test_generated_requests_never_get_a_server_error(
    server: Server, who: str, tmp_path: Path
) -> None:
    selection = [arg for tag in TAGS for arg in ("--include-tag", tag)]
    tested = run_schemathesis(
        server, who, "compensation", selection, seed=20261123, workdir=tmp_path
    )
    assert tested >= 18  # every operation of these tags
