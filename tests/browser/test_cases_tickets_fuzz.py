"""Schemathesis against the ticket, dashboard, audit and widget-ticket operations of a real
``contactd serve`` (the browser tests' server; no browser needed): inputs generated from
each operation's schema, sent as the admin and as an agent; no answer may be a 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, Server

PATHS = r"^/api/v1/(tickets|dashboard|audit/export|im/tickets)"


@pytest.mark.parametrize("who", ["admin", "agent1"])
def test_ticket_operations_never_get_a_server_error(server: Server, who: str) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is not installed: run `make install` (dev extra)"
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / f"schemathesis-tickets-{who}.xml"
    run = subprocess.run(
        [
            *(exe, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error"),
            *("--header", f"Authorization: Bearer {server.token(who)}"),
            *("--include-path-regex", PATHS, "--max-examples", "25", "--seed", "20261124"),
            *("--phases", "examples,coverage,fuzzing", "--request-timeout", "10"),
            *("--report", "junit", "--report-junit-path", str(report)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested and int(tested.group(1)) >= 15, run.stdout[-3000:]  # every operation ran
