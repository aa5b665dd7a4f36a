"""Real-browser fixtures: a real ``python -m contactd serve`` subprocess per test (its own
data directory, the session's private Redis under a unique site) and Debian's chromium
driven by Playwright's sync API (so the tests are plain ``def`` functions and never meet
pytest-asyncio's event loop).

Without chromium the tests are skipped, except under CI, where they fail loudly. On a
failure every page's screenshot and console log, and the server's log, are saved under
``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from contactd.auth.visitors import sign_identity
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SOCKET_IO_CLIENT = ROOT / "web_client/node_modules/socket.io-client/dist/socket.io.min.js"
DEMO_PASSWORD = "contactd-demo"
TIMEOUT_MS = 15_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class Server:
    url: str
    site: str
    identity_secret: str
    log_path: Path

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def token(self, username: str) -> str:
        res = self.api(
            "POST", "/api/v1/auth/login", {"username": username, "password": DEMO_PASSWORD}
        )
        return str(res["token"])


def _server_env(tmp: Path, redis_url: str, site: str, port: int, secret: str) -> dict[str, str]:
    # only our settings: a developer's CONTACTD_CONFIG or database must not leak in
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTD_")}
    env.update(
        CONTACTD_DATA_DIR=str(tmp / "data"),
        CONTACTD_REDIS_URL=redis_url,
        CONTACTD_SITE=site,
        CONTACTD_HOST="127.0.0.1",
        CONTACTD_PORT=str(port),
        CONTACTD_LOG_LEVEL="INFO",
        CONTACTD_IM__IDENTITY_SECRET=secret,
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"contactd serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"contactd serve was not ready in 60 s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def seeded_data_dir(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory after ``contactd seed-demo``, made once; each test gets a copy."""
    tmp = tmp_path_factory.mktemp("seeded")
    env = _server_env(tmp, redis_url, "seed" + secrets.token_hex(4), 0, secrets.token_hex(16))
    seeded = subprocess.run(
        [sys.executable, "-m", "contactd", "seed-demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if seeded.returncode != 0:
        pytest.fail(f"contactd seed-demo failed:\n{seeded.stdout}\n{seeded.stderr}")
    return tmp / "data"


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra CONTACTD_* settings for the server; a test module overrides this fixture."""
    return {}


@pytest.fixture
def server(
    redis_url: str,
    seeded_data_dir: Path,
    tmp_path: Path,
    server_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[Server]:
    site = "b" + secrets.token_hex(6)
    port = free_port()
    secret = secrets.token_hex(16)
    env = {**_server_env(tmp_path, redis_url, site, port, secret), **server_env}
    # a test's own settings: @pytest.mark.server_env(CONTACTD_X="...")
    for mark in request.node.iter_markers("server_env"):
        env.update(mark.kwargs)
    shutil.copytree(seeded_data_dir, tmp_path / "data")
    log_path = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "contactd", "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(url, proc, log_path)
            yield Server(url=url, site=site, identity_secret=secret, log_path=log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            client = redis_sync.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"cd:{{{site}}}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = shutil.which("chromium")
    if exe is None:
        reason = "chromium is not installed (`make system-deps-test` installs Debian's chromium)"
        if _in_ci():
            pytest.fail(f"{reason}; CI is set, so the browser tests must run", pytrace=False)
        pytest.skip(reason)
    if not SOCKET_IO_CLIENT.is_file():
        pytest.fail("web_client/node_modules is missing: run `make install`", pytrace=False)
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make install`", pytrace=False)
    expect.set_options(timeout=TIMEOUT_MS)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=exe,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    finally:
        pw.stop()


@dataclass
class OpenPage:
    name: str
    context: Any
    page: Any
    log: list[str] = field(default_factory=list)


class Pages:
    """Opens each page in its own browser context (own storage: one person per context)."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.opened: list[OpenPage] = []

    def new(self, name: str, *, locale: str = "zh-CN") -> Any:
        context = self.browser.new_context(
            base_url=self.server.url, locale=locale, viewport={"width": 1440, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        opened = OpenPage(name, context, page)
        page.on("console", lambda m: opened.log.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: opened.log.append(f"[pageerror] {e}"))
        self.opened.append(opened)
        return page

    def identified(
        self,
        name: str,
        *,
        customer_id: str = "u1001",
        display_name: str = "张三",
        locale: str = "zh-CN",
    ) -> Any:
        """A page whose host site signed its customer's identity (the demo directory's
        u1001 张三 by default) and hands it to the widget in script, before the widget's
        tag runs."""
        ts = int(time.time())
        identity = {
            "customer_id": customer_id,
            "name": display_name,
            "ts": ts,
            "sig": sign_identity(self.server.identity_secret, customer_id, ts),
        }
        page = self.new(name, locale=locale)
        page.add_init_script(f"window.ContactdSettings = {{identity: {json.dumps(identity)}}};")
        return page

    def js_errors(self) -> list[str]:
        return [line for p in self.opened for line in p.log if line.startswith("[pageerror]")]

    def save_artifacts(self, test_name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", test_name)
        for p in self.opened:
            try:
                p.page.screenshot(path=str(ARTIFACTS / f"{stem}-{p.name}.png"), full_page=True)
            except Exception as exc:  # a crashed page still gets its log saved
                p.log.append(f"[screenshot failed] {exc}")
            (ARTIFACTS / f"{stem}-{p.name}.console.log").write_text(
                "\n".join(p.log) + "\n", encoding="utf-8"
            )
        if self.server.log_path.is_file():
            shutil.copy(self.server.log_path, ARTIFACTS / f"{stem}-server.log")

    def close(self) -> None:
        for p in self.opened:
            with contextlib.suppress(Exception):
                p.context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def pages(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages(browser, server)
    yield opened
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        opened.save_artifacts(request.node.name)
    opened.close()
