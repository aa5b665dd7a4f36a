"""Running schemathesis (the CLI, in a subprocess) against a real ``contactd serve``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.browser.conftest import ARTIFACTS, Server


def run_schemathesis(
    server: Server, who: str, name: str, selection: list[str], *, seed: int, workdir: Path
) -> int:
    """Fuzz the operations ``selection`` picks (schemathesis ``--include-*`` options) as
    ``who``: every answer must be a non-5xx. Returns how many operations were tested
    (all that were selected); a JUnit report goes to test-artifacts/."""
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is not installed: run `make install` (dev extra)"
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / f"schemathesis-{name}-{who}.xml"
    run = subprocess.run(
        [
            *(exe, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error"),
            *("--header", f"Authorization: Bearer {server.token(who)}"),
            *selection,
            *("--max-examples", "25", "--seed", str(seed), "--request-timeout", "10"),
            *("--phases", "examples,coverage,fuzzing"),
            *("--report", "junit", "--report-junit-path", str(report)),
        ],
        cwd=workdir,  # schemathesis keeps its state in the working directory
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", run.stdout)
    assert counts and counts[1] == counts[2], run.stdout[-3000:]
    return int(counts[2])
