"""The command line, configuration errors, the embedded Redis and a real server process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from contactd.cli import main
from contactd.settings import ConfigError, load_settings
from contactd.storage.redis import EmbeddedRedis, reachable
from tests.conftest import free_port

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "contactd.example.toml"


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert "configuration is valid" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('port = "eighty"', "port"),
        ('[[queues]]\nid = "a"\nname = "A"\nstrategy = "random"', "queues.0.strategy"),
        ('[[queues]]\nid = "a"\nname = "A"\nmax_wait_s = 5\noverflow_to = "zzz"', "unknown queue"),
        ('[[queues]]\nid = "a"\nname = "A"\n[[queues]]\nid = "a"\nname = "B"', "unique"),
        ('[roles]\nagent = ["fly"]', "unknown permissions: fly"),
        ("colour = 3", "colour"),
        ("port = [", "not valid TOML"),
    ],
)
def test_bad_config_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    assert main(["--config", str(path), "check-config"]) == 2
    assert expected in capsys.readouterr().err


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("port = 9000\n[routing]\nheartbeat_ttl_s = 40\n")
    monkeypatch.setenv("CONTACTD_PORT", "9100")
    monkeypatch.setenv("CONTACTD_ROUTING__HEARTBEAT_TTL_S", "12")
    s = load_settings(path)
    assert s.port == 9100 and s.routing.heartbeat_ttl_s == 12
    monkeypatch.setenv("CONTACTD_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="port"):
        load_settings(path)


async def test_embedded_redis_starts_is_shared_restarts_and_stops(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    url = await first.start()
    assert await reachable(url)
    second = EmbeddedRedis(tmp_path)  # another process on the same data dir shares it
    assert await second.start() == url and second._proc is None
    assert first._proc is not None
    first._proc.kill()  # the supervisor brings it back
    for _ in range(100):
        await asyncio.sleep(0.05)
        if first._proc.returncode is None and await reachable(url, within_s=0.2):
            break
    assert await reachable(url)
    await first.stop()
    assert not await reachable(url, within_s=0.3)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except Exception:
        return 0


def test_serve_starts_with_embedded_defaults_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CONTACTD_DATA_DIR": str(tmp_path / "data"), "CONTACTD_PORT": str(port)}
    env.pop("CONTACTD_REDIS_URL", None)
    env.pop("CONTACTD_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "contactd", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _get(f"http://127.0.0.1:{port}/readyz") != 200:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200
        assert (tmp_path / "data" / "contactd.sqlite3").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        log = proc.stderr.read() if proc.stderr else ""
        assert "started a private redis-server" in log
        assert "embedded redis-server stopped" in log
        assert "Traceback" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
