"""Shared helpers for contactd's benchmark scripts (``scripts/bench_*.py``).

Nothing here knows about contactd itself: a private redis-server on a free port,
closed-loop and rate-limited drivers for asyncio calls, percentiles, Redis-side
accounting (``INFO commandstats`` / ``INFO cpu``), machine facts, progress lines on
stderr and JSON output on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- redis-server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throw-away redis-server on 127.0.0.1 and a free port: no persistence, its own
    temporary working directory, stopped (and the directory removed) by ``stop()``."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.unix_url = ""  # the same server on a unix socket (as contactd's embedded Redis)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout_s: float = 10.0) -> str:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit(
                "redis-server is not installed (apt-get install redis-server), "
                "or pass --redis-url to use a running one"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="contactd-bench-")
        port = free_port()
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._tmp.name,
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--unixsocket",
                str(Path(self._tmp.name) / "redis.sock"),
                "--unixsocketperm",
                "700",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        self.unix_url = f"unix://{Path(self._tmp.name) / 'redis.sock'}?db=0"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise SystemExit("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unique_site(prefix: str = "bench") -> str:
    """A site name no one else uses (site names allow [a-zA-Z0-9_-]{1,32})."""
    return f"{prefix}{secrets.token_hex(5)}"


async def delete_matching(client: Any, pattern: str, chunk: int = 1000) -> int:
    """Delete every key matching ``pattern`` (SCAN, then UNLINK in chunks)."""
    n = 0
    batch: list[Any] = []
    async for key in client.scan_iter(match=pattern, count=chunk):
        batch.append(key)
        if len(batch) >= chunk:
            n += await client.unlink(*batch)
            batch = []
    if batch:
        n += await client.unlink(*batch)
    return int(n)


# --------------------------------------------------------------------------- redis accounting


@dataclass(frozen=True)
class RedisCounters:
    """A snapshot of what the server has spent; subtract two to get a phase's share."""

    calls: dict[str, int]
    usec: dict[str, int]
    cpu_s: float  # main thread user+sys (falls back to the whole process)

    def __sub__(self, other: RedisCounters) -> RedisCounters:
        return RedisCounters(
            {k: v - other.calls.get(k, 0) for k, v in self.calls.items()},
            {k: v - other.usec.get(k, 0) for k, v in self.usec.items()},
            self.cpu_s - other.cpu_s,
        )

    def __add__(self, other: RedisCounters) -> RedisCounters:
        keys = set(self.calls) | set(other.calls)
        return RedisCounters(
            {k: self.calls.get(k, 0) + other.calls.get(k, 0) for k in keys},
            {k: self.usec.get(k, 0) + other.usec.get(k, 0) for k in keys},
            self.cpu_s + other.cpu_s,
        )

    @staticmethod
    def zero() -> RedisCounters:
        return RedisCounters({}, {}, 0.0)

    def usec_per_call(self, *commands: str) -> float | None:
        """Server-side µs per call of these commands together (None: no calls)."""
        calls = sum(self.calls.get(c, 0) for c in commands)
        return sum(self.usec.get(c, 0) for c in commands) / calls if calls else None


async def redis_counters(client: Any) -> RedisCounters:
    stats = await client.info("commandstats")
    cpu = await client.info("cpu")
    calls: dict[str, int] = {}
    usec: dict[str, int] = {}
    for name, row in stats.items():
        cmd = str(name).removeprefix("cmdstat_")
        calls[cmd] = int(row["calls"])
        usec[cmd] = int(row["usec"])
    if "used_cpu_user_main_thread" in cpu:
        cpu_s = float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])
    else:
        cpu_s = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return RedisCounters(calls, usec, cpu_s)


async def redis_version(client: Any) -> str:
    return str((await client.info("server"))["redis_version"])


# --------------------------------------------------------------------------- drivers


async def closed_loop(call: Callable[[], Awaitable[Any]], count: int, concurrency: int) -> float:
    """Run ``call`` ``count`` times with ``concurrency`` calls in flight; wall seconds."""
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return time.perf_counter() - t0


async def for_each(
    fn: Callable[[Any], Awaitable[Any]], items: Iterable[Any], concurrency: int
) -> None:
    """Apply ``fn`` to every item with ``concurrency`` calls in flight."""
    todo = iter(items)

    async def worker() -> None:
        for item in todo:
            await fn(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class KeepAlive:
    """Keep-alive HTTP/1.1 connections to one server for a load generator: ``request``
    sends pre-built request bytes and returns (status, body).

    An HTTP client library does much more per request than a server's bare handler (the
    aiohttp client costs about twice the CPU of a bare aiohttp handler per request), so on
    a small machine it, not the server, sets the ceiling. This one only writes the bytes,
    reads the head and ``Content-Length`` bytes of body: enough for servers that answer
    with a length (aiohttp does)."""

    _LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    @staticmethod
    def post(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
        return head.encode("latin-1") + body

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = self._LENGTH.search(head)
            if length is None:
                raise ConnectionError("an answer without Content-Length")
            body = await reader.readexactly(int(length.group(1)))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise ConnectionError(str(exc)) from exc
        if b"connection: close" in head.lower():
            writer.close()
        else:
            self._idle.append((reader, writer))
        return int(head[9:12]), body

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        self._idle.clear()


@dataclass(frozen=True)
class Paced:
    wall_s: float
    max_in_flight: int


async def paced(
    call: Callable[[], Awaitable[Any]],
    count: int,
    rate_per_s: float,
    out_ns: list[int],
    max_in_flight: int = 64,
    sent_ns: list[int] | None = None,
) -> Paced:
    """Open-loop load: start ``count`` calls at ``rate_per_s`` (not waiting for earlier
    calls), append each call's latency in ns to ``out_ns`` (and, given ``sent_ns``, when
    it started there, in the same order).

    Each latency runs from the moment the call's task is created (so time it spends
    waiting for the busy event loop, or for one of the ``max_in_flight`` slots when the
    server falls behind, counts) to its completion. The event loop cannot sleep for less
    than about a millisecond, so calls due in the same millisecond start together in a
    small burst; that oversleep is not counted."""
    interval = 1.0 / rate_per_s
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    slots = asyncio.Semaphore(max_in_flight)
    running = peak = 0

    async def timed(t0: int) -> None:
        nonlocal running, peak
        async with slots:
            running += 1
            peak = max(peak, running)
            try:
                await call()
            finally:
                running -= 1
        out_ns.append(time.perf_counter_ns() - t0)
        if sent_ns is not None:
            sent_ns.append(t0)

    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(timed(time.perf_counter_ns())))
    await asyncio.gather(*tasks)
    return Paced(time.perf_counter() - start, peak)


# --------------------------------------------------------------------------- statistics


def write_timeline(
    path: str, name: str, pairs: Iterable[tuple[int, int]], bucket_ms: int = 100
) -> int:
    """``--timeline``: latencies (``(sent_ns, latency_ns)`` pairs) by when they were sent,
    in buckets of ``bucket_ms`` (count, p50, max), added to the JSON file ``path`` under
    ``name``; returns the number of buckets. A periodic stall shows up as a pattern
    (SQLite's checkpoints did, every 200 ms)."""
    buckets: dict[int, list[int]] = {}
    pairs = list(pairs)
    start = min((sent for sent, _ in pairs), default=0)
    for sent, lat in pairs:
        buckets.setdefault((sent - start) // (bucket_ms * 1_000_000), []).append(lat)
    rows = []
    for k in sorted(buckets):
        v = sorted(buckets[k])
        rows.append(
            {
                "at_s": round(k * bucket_ms / 1000, 3),
                "n": len(v),
                "p50_ms": round(v[len(v) // 2] / 1e6, 2),
                "max_ms": round(v[-1] / 1e6, 2),
            }
        )
    out = Path(path)
    timeline = json.loads(out.read_text("utf-8")) if out.exists() else {}
    timeline[name] = {"bucket_ms": bucket_ms, "buckets": rows}
    out.write_text(json.dumps(timeline, indent=1), "utf-8")
    return len(rows)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary_ms(samples_ns: Iterable[int]) -> dict[str, float | int]:
    s = sorted(samples_ns)
    ms = [v / 1e6 for v in s]
    return {
        "samples": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "p999_ms": round(percentile(ms, 99.9), 3),
        "max_ms": round(ms[-1], 3) if ms else float("nan"),
    }


# --------------------------------------------------------------------------- process / machine


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(redis_ver: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
    }
    if redis_ver is not None:
        info["redis"] = redis_ver
    return info


class CpuWatch:
    """How busy the whole machine was between ``start()`` and ``stop()``, and how much of
    that was not this process or the given redis-server: other people's work on a shared
    machine makes every figure worse, so the benchmarks report it."""

    def __init__(self) -> None:
        self._t0 = self._busy0 = self._self0 = 0.0

    @staticmethod
    def _machine_busy_s() -> float:
        try:
            with open("/proc/stat", encoding="utf-8") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return float("nan")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = self._machine_busy_s()
        self._self0 = time.process_time()

    def stop(self, redis_cpu_s: float) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        busy = self._machine_busy_s() - self._busy0
        own = time.process_time() - self._self0
        cpus = os.cpu_count() or 1
        other = max(0.0, busy - own - redis_cpu_s)
        return {
            "machine_busy_share": round(busy / (wall * cpus), 3),
            "bench_process_cpu_share": round(own / (wall * cpus), 3),
            "redis_cpu_share": round(redis_cpu_s / (wall * cpus), 3),
            "other_cpu_share": round(other / (wall * cpus), 3),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        }


def install_uvloop(wanted: bool) -> str:
    """Use uvloop's event loop policy when asked and installed; returns the loop's name."""
    if not wanted:
        return "asyncio"
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        progress_line("uvloop is not installed: using the default asyncio loop")
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return f"uvloop {uvloop.__version__}"


# --------------------------------------------------------------------------- output

_T0 = time.perf_counter()


def progress_line(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    """Wait for a server subprocess's ``/readyz``; exit if it dies or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} was not ready in {timeout_s} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server subprocess: terminate, then kill if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
