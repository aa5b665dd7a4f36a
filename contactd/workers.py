"""Several serving processes on one port: ``contactd serve --workers N``.

One Python process serves on one core. With ``workers`` > 1 the process started by
``contactd serve`` becomes a small supervisor and serves nothing itself:

1. it starts the embedded redis-server when no ``redis_url`` is configured (the workers
   share it; every routing decision is already safe across processes) and brings the
   database up to date once, so the workers do not race each other's migrations;
2. it reserves the port (bound with ``SO_REUSEPORT``, never listening, so the kernel
   hands it no connection; port 0 becomes a real port here) and starts the workers, each
   a whole ``contactd serve`` listening on that port with ``SO_REUSEPORT``: the kernel
   spreads new connections over them;
3. it restarts a worker that dies (a second later, backing off up to 30 s while they keep
   dying young) — its sockets' clients reconnect to the others in the meantime;
4. on SIGTERM or SIGINT it passes SIGTERM on, waits for the workers to drain, then stops
   the embedded Redis.

A websocket stays on the worker that accepted it; messages between workers go through
Redis as between nodes (docs/architecture.md, "Several processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from contactd.metrics import MULTIPROC_DIR
from contactd.settings import Settings

log = logging.getLogger("contactd.workers")

# a worker that dies within this many seconds of its start is restarted after a back-off
YOUNG_DEATH_S = 10.0
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 25.0  # the workers' own shutdown timeout is 15 s
CANNOT_START = 2  # a worker's exit code when it could not start (see cli.cmd_serve)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT that never listens: it keeps the
    port ours (and turns port 0 into a real one) while receiving no connection. The port
    must be free: another server on it — even another contactd pool, whose sockets would
    let ours join them — is refused (OSError, EADDRINUSE)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # no SO_REUSEPORT: alone
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class WorkerPool:
    """Starts, watches and stops ``count`` serving processes."""

    def __init__(self, settings: Settings, count: int, config: str | None) -> None:
        self.settings = settings
        self.count = count
        self.config = config
        self.port = settings.port
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._env: dict[str, str] = {}
        self._stopping = asyncio.Event()
        self.exit_code = 0
        # a pipe nobody writes to: the workers get its read end, and it reads as EOF when
        # this process is gone (outlive_no_supervisor)
        self._lifeline = os.pipe()

    def argv(self, index: int) -> list[str]:
        head = [sys.executable, "-m", "contactd"]
        if self.config:
            head += ["--config", self.config]
        return [
            *head,
            "serve",
            "--host",
            self.settings.host,
            "--port",
            str(self.port),
            "--pool-worker",
            str(index),
            "--lifeline",
            str(self._lifeline[0]),
        ]

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(index), env=self._env, pass_fds=(self._lifeline[0],)
        )
        self.procs[index] = proc
        log.info("worker %d started (pid %d)", index, proc.pid)
        return proc

    async def _watch(self, index: int) -> None:
        backoff = 0.5  # a first young death waits 1 s
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await self._spawn(index)
            code = await proc.wait()
            # its gauges leave the totals; its counters stay in them (they only grow)
            mark_process_dead(proc.pid, self._env[MULTIPROC_DIR])  # type: ignore[no-untyped-call]
            if self._stopping.is_set():
                return
            if code == CANNOT_START:  # it said why (Redis, the port): restarting will not help
                log.error("worker %d cannot start: stopping contactd", index)
                self.exit_code = CANNOT_START
                self._stopping.set()
                return
            young = time.monotonic() - started < YOUNG_DEATH_S
            backoff = min(backoff * 2, MAX_BACKOFF_S) if young else 1.0
            log.error(
                "worker %d (pid %d) exited with code %s; restarting it in %.0f s",
                index,
                proc.pid,
                code,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)

    async def run(self) -> int:
        from contactd.storage.db import migrate, open_database
        from contactd.storage.redis import EmbeddedRedis

        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        reservation = reserve_port(s.host, s.port)  # first: a busy port stops us here
        self.port = reservation.getsockname()[1]
        self._env = dict(os.environ)
        self._env[MULTIPROC_DIR] = str(self._metrics_dir())
        embedded: EmbeddedRedis | None = None
        try:
            if s.redis_url is None:
                embedded = EmbeddedRedis(s.data_dir)
                self._env["CONTACTD_REDIS_URL"] = await embedded.start()
            engine = await open_database(s.effective_database_url)
            try:
                await migrate(engine)
            finally:
                await engine.dispose()
        except BaseException:
            reservation.close()
            if embedded is not None:
                await embedded.stop()
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        log.info(
            "contactd starting %d workers on http://%s:%s (site %s)",
            self.count,
            s.host,
            self.port,
            s.site,
        )
        watchers = [asyncio.create_task(self._watch(i)) for i in range(self.count)]
        try:
            await self._stopping.wait()
            log.info("stopping the workers")
            await self._stop_all()
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            reservation.close()
            for fd in self._lifeline:
                os.close(fd)
            if embedded is not None:
                await embedded.stop()
        return self.exit_code

    def _metrics_dir(self) -> Path:
        """Where the workers keep their metric values (``contactd.metrics``): emptied at
        start, so a restarted pool's counters begin at zero as a restarted process's do."""
        path = self.settings.data_dir / "run" / "metrics"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    async def _stop_all(self) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), STOP_GRACE_S)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.error("worker pid %d did not stop in time: killing it", proc.pid)
                    proc.kill()
            await asyncio.gather(*(p.wait() for p in running))


def outlive_no_supervisor(lifeline: int) -> Callable[[object], AsyncIterator[None]]:
    """A worker's cleanup context: it stops (as on SIGTERM) when its supervisor is gone —
    killed, so it could not stop its workers itself — instead of serving on unsupervised.
    ``lifeline``: the read end of a pipe whose write end only the supervisor holds; the
    kernel closes it when the supervisor dies, and the read end then reads as EOF."""

    async def ctx(_: object) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def readable() -> None:
            if os.read(lifeline, 1):
                return
            loop.remove_reader(lifeline)
            log.error("the supervisor is gone: stopping this worker")
            os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(lifeline, readable)
        yield
        loop.remove_reader(lifeline)

    return ctx


def worker_count(value: str | int, cpus: int | None = None) -> int:
    """``auto`` → one worker per CPU; otherwise a positive number."""
    if value == "auto":
        return max(1, cpus or os.cpu_count() or 1)
    n = int(value)
    if n < 1:
        raise ValueError("workers must be at least 1 (or auto)")
    return n


def run_pool(settings: Settings, count: int, config: str | None, loop_kind: str) -> int:
    from contactd.cli import new_event_loop

    loop = new_event_loop(loop_kind)
    try:
        return loop.run_until_complete(WorkerPool(settings, count, config).run())
    finally:
        loop.close()
