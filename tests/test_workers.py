"""``contactd serve --workers N``: several serving processes on one port, supervised, with
one set of metrics and one embedded Redis; a killed worker comes back; SIGTERM stops all."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from contactd.workers import worker_count
from tests.conftest import free_port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), r.read().decode()
    except Exception:
        return 0, ""


def _workers_of(pid: int) -> set[int]:
    """The supervisor's worker processes (its children started with ``--pool-worker``)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == pid and b"--pool-worker" in cmdline:
            found.add(int(entry))
    return found


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (each ready worker has one)."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[1].endswith(f":{port:04X}") and r[3] == "0A")


def _ready_requests(metrics: str) -> float:
    """``/readyz`` requests answered 200, as the scraped metrics count them."""
    total = 0.0
    for line in metrics.splitlines():
        if (
            line.startswith("contactd_http_requests_total{")
            and 'status="200"' in line
            and 'route="/readyz"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait(predicate: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


def test_worker_count() -> None:
    assert worker_count("auto", cpus=4) == 4 and worker_count(3) == 3
    with pytest.raises(ValueError, match="at least 1"):
        worker_count(0)


def test_workers_share_the_port_the_metrics_and_redis_and_come_back_when_killed(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "CONTACTD_DATA_DIR": str(tmp_path / "data"), "CONTACTD_PORT": str(port)}
    for name in ("CONTACTD_REDIS_URL", "CONTACTD_CONFIG", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    proc = _start_pool(env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: len(_workers_of(proc.pid)) == 2 and _listeners(port) == 2)
        first = _workers_of(proc.pid)
        # every connection is a new one (urllib): the kernel spreads them over both workers,
        # and the metrics any of them renders count every worker's requests
        before = _ready_requests(_get(base + "/metrics")[1])
        for _ in range(40):
            assert _get(base + "/readyz")[0] == 200
        after = _ready_requests(_get(base + "/metrics")[1])
        assert after - before >= 40

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # once it is gone (its requests in flight and its queue of new connections die
        # with it), the other worker answers everything; the supervisor starts a new one
        _wait(lambda: _listeners(port) == 1)
        for _ in range(20):
            assert _get(base + "/readyz")[0] == 200
        _wait(lambda: victim not in _workers_of(proc.pid) and _listeners(port) == 2)
        # counters never go back: the dead worker's requests stay counted
        assert _ready_requests(_get(base + "/metrics")[1]) >= after + 20

        # another pool on the same port is refused, not let in beside this one
        other = subprocess.run(
            [sys.executable, "-m", "contactd", "serve", "--workers", "2"],
            env={**env, "CONTACTD_DATA_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 2 and "cannot start on" in other.stderr
        assert not (tmp_path / "other" / "redis").exists()  # nothing started for it

        workers = _workers_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        for pid in workers:
            assert not os.path.exists(f"/proc/{pid}") or _zombie_or_gone(pid)
        log = proc.stderr.read() if proc.stderr else ""
        assert log.count("started a private redis-server") == 1  # one Redis for all
        assert f"worker 0 started (pid {victim})" in log or f"(pid {victim})" in log
        assert "exited with code -9; restarting it" in log
        assert "embedded redis-server stopped" in log
        assert "Traceback" not in log
    finally:
        _kill_all(proc)


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor killed outright cannot stop its workers: they notice and stop."""
    port = free_port()
    env = {**os.environ, "CONTACTD_DATA_DIR": str(tmp_path / "data"), "CONTACTD_PORT": str(port)}
    for name in ("CONTACTD_REDIS_URL", "CONTACTD_CONFIG", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    proc = _start_pool(env)
    try:
        _wait(lambda: len(_workers_of(proc.pid)) == 2 and _listeners(port) == 2)
        workers = _workers_of(proc.pid)
        proc.kill()
        proc.wait(10)
        _wait(lambda: all(_zombie_or_gone(pid) for pid in workers), timeout_s=30)
        assert _listeners(port) == 0
    finally:
        _kill_all(proc)


def _start_pool(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "contactd", "serve", "--workers", "2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: nothing outlives the test
    )


def _kill_all(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
