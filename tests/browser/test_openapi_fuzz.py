"""Schemathesis against the OpenAPI document of a real ``contactd serve`` (the same server
the browser tests use): inputs generated from every operation's schema, sent as the
admin and as an agent; no answer may be a 5xx. Lives beside the browser tests for their
server fixture; it needs no browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, Server

ROOT = Path(__file__).resolve().parents[2]


TAGS = ("compensation", "payouts", "case-config")


@pytest.mark.parametrize("who", ["admin", "agent1"])
def test_generated_requests_never_get_a_server_error(server: Server, who: str) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is not installed: run `make install` (dev extra)"
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / f"schemathesis-{who}.xml"
    run = subprocess.run(
        [
            exe,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {server.token(who)}",
            *[arg for tag in TAGS for arg in ("--include-tag", tag)],
            "--max-examples",
            "25",
            "--seed",
            "20261123",
            "--phases",
            "examples,coverage,fuzzing",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--request-timeout",
            "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", run.stdout)
    assert counts, run.stdout[-3000:]
    selected, tested = int(counts[1]), int(counts[2])
    assert selected == tested >= 18  # every operation of these tags was exercised
