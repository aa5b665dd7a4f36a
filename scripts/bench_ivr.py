"""IVR webhook benchmark: signed ``call.incoming`` webhooks, each one routing a call into
a voice queue, against a bare aiohttp handler that only parses the JSON.

What one "routed webhook" is here: an IVR platform posts ``call.incoming`` (HMAC-SHA256
signed, a fresh event id and call id) to ``/ivr/v1/events``; contactd checks the
signature and the timestamp, records the signature (replay guard) and claims the event id
(idempotency) in one Redis script, looks the caller up in the directory, opens a service
session (SQL), enqueues the call in the routing engine (Lua) and answers with the
``enqueue`` instruction (queue, position, estimated wait). The dialled number is mapped
straight to a voice queue, so no menu is involved and nobody answers: the queue grows.

The bare baseline is an aiohttp server in its own process whose one handler parses the
JSON body and answers a small JSON object: no signature check, no Redis, no SQL.

Both servers get the same requests (signed the same way) from the same load generator:
``--workers`` client processes (uvloop, keep-alive connections), each signing its
requests as it sends them. By default (``--client raw``) they write each request's bytes
and read the answer's head and body on plain asyncio streams (``_bench_common.KeepAlive``):
the aiohttp client (``--client aiohttp``) costs more CPU per request than the bare handler
it measures, and on a 2-core machine it, not the server, set the bare figure.
``--server-workers N`` runs each server as N processes on one port (contactd: ``serve
--workers N``; the bare handler: N processes with ``SO_REUSEPORT``).

1. **webhooks/s**: closed loop, ``--inflight`` requests in flight per worker, ``--count``
   requests in all (after a warm-up); requests ÷ wall time of the slowest worker.
2. **latency**: open loop at ``--latency-load`` (0.5) of contactd's measured rate, for
   ``--latency-s`` seconds, spread over the workers; p50/p99 from the moment a request
   is due to its response. The bare handler is timed at the same absolute rate.

contactd runs as ``python -m contactd serve`` in a subprocess with a temporary data
directory (SQLite), a fresh site, a private redis-server and log level WARNING. contactd
reaches that Redis on a unix socket, as it reaches the Redis it starts itself when none is
configured (``--redis tcp``: on 127.0.0.1, as a Redis on another host would be reached;
on this kind of virtual machine each TCP write that wakes Redis costs about twice the CPU
of a unix-socket write). Every answer is checked (HTTP 200 and ``enqueue``); errors are counted and
reported. The machine's CPU use by others during the run is reported too (a shared
machine makes every figure worse).

3. **instructions** (``--instructions``, instead of 1 and 2): the CPU instructions each
   server executes per webhook (all threads, user space), counted by valgrind's callgrind
   — the same count on a quiet or a busy machine, so a change's effect shows without the
   noise of shared cores. Each server runs under callgrind; after 200 webhooks of warm-up
   the counters are zeroed, ``--count`` webhooks are sent (8 in flight) and counted, and
   the instructions of an idle window of the same server (its timers: sweeper, job
   pollers) are subtracted pro rata. ``work_ratio`` = bare ÷ contactd instructions per
   webhook. Slow: contactd takes a few minutes to start under valgrind.

Usage::

    python scripts/bench_ivr.py            # 20,000 webhooks + 20 s of latency, a table
    python scripts/bench_ivr.py --quick    # 3,000 webhooks + 5 s: under 45 s
    python scripts/bench_ivr.py --json     # one JSON object on stdout
    python scripts/bench_ivr.py --instructions --count 200   # instructions per webhook
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench_common import (
    CpuWatch,
    KeepAlive,
    RedisServer,
    format_table,
    free_port,
    install_uvloop,
    latency_summary_ms,
    machine_info,
    paced,
    print_json,
    progress_line,
    stop,
    unique_site,
    wait_ready,
    write_timeline,
)

from contactd.channels.ivr.signing import signed_headers

DIALLED = "4000000000"
PATH = "/ivr/v1/events"


# --------------------------------------------------------------------------- servers


def bare_server(port: int) -> None:
    """The baseline: parse the JSON, answer a small JSON object."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        event = await request.json()
        return web.json_response(
            {
                "event_id": event["id"],
                "call_id": event["call_id"],
                "instruction": {"action": "hangup"},
            }
        )

    app = web.Application()
    app.router.add_post(PATH, handle)
    app.router.add_get("/readyz", lambda _: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, reuse_port=True)


def redis_pid(redis: RedisServer) -> int:
    assert redis.proc is not None
    return redis.proc.pid


def contactd_env(
    tmp: str, redis_url: str, site: str, port: int, secret: str, event_loop: str = "uvloop"
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTD_")}
    config = Path(tmp) / "contactd.toml"
    config.write_text(
        "[[queues]]\n"
        'id = "bench"\nname = "Bench"\nchannel = "voice"\nmax_waiting = 1000000\n\n'
        "[ivr]\n"
        f'secrets = ["{secret}"]\nnumbers = {{ "{DIALLED}" = "bench" }}\n',
        "utf-8",
    )
    env.update(
        CONTACTD_CONFIG=str(config),
        CONTACTD_DATA_DIR=str(Path(tmp) / "data"),
        CONTACTD_REDIS_URL=redis_url,
        CONTACTD_SITE=site,
        CONTACTD_PORT=str(port),
        CONTACTD_LOG_LEVEL="WARNING",
        CONTACTD_EVENT_LOOP=event_loop,
    )
    return env


# --------------------------------------------------------------------------- load


def _event(prefix: str, n: int) -> bytes:
    event = {
        "id": f"{prefix}-{n}",
        "type": "call.incoming",
        "call_id": f"{prefix}-{n}",
        "caller": f"139{n % 100_000_000:08d}",
        "dialled": DIALLED,
    }
    return json.dumps(event).encode()


async def _post(http: Any, url: str, secret: str, prefix: str, n: int, check: bool) -> bool:
    raw = _event(prefix, n)
    headers = signed_headers(secret, int(time.time()), raw)
    if isinstance(http, KeepAlive):
        status, body = await http.request(KeepAlive.post(http.host, PATH, headers, raw))
    else:
        async with http.post(url, data=raw, headers=headers) as r:
            status, body = r.status, await r.read()
    if status != 200:
        return False
    return not check or b'"enqueue"' in body


async def _phase(cfg: dict[str, Any]) -> dict[str, Any]:
    """One worker's share of one phase: "closed" (saturation) or "paced" (latency)."""
    import aiohttp

    url = cfg["url"] + PATH
    prefix = cfg["prefix"]
    errors = 0
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=cfg["inflight"])
    async with contextlib.AsyncExitStack() as stack:
        if cfg["client"] == "raw":
            host, port = cfg["url"].removeprefix("http://").rsplit(":", 1)
            http: Any = KeepAlive(host, int(port))
            stack.push_async_callback(http.close)
        else:
            http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))

        async def one() -> None:
            nonlocal errors
            try:
                if not await _post(http, url, cfg["secret"], prefix, next(counter), cfg["check"]):
                    errors += 1
            except (aiohttp.ClientError, ConnectionError):
                errors += 1

        async def closed(count: int) -> float:
            todo = iter(range(count))

            async def loop() -> None:
                for _ in todo:
                    await one()

            t0 = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(cfg["inflight"])))
            return time.perf_counter() - t0

        await closed(cfg["warmup"])
        errors = 0
        samples: list[int] = []
        sent: list[int] = []
        if cfg["mode"] == "closed":
            wall = await closed(cfg["count"])
        else:
            t0 = time.perf_counter()
            await paced(one, cfg["count"], cfg["rate"], samples, cfg["inflight"], sent)
            wall = time.perf_counter() - t0
        return {
            "wall_s": wall,
            "count": cfg["count"],
            "errors": errors,
            "samples": samples,
            "sent": sent,
        }


def run_phase(cfg: dict[str, Any]) -> dict[str, Any]:
    install_uvloop(True)
    return asyncio.run(_phase(cfg))


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_s(*pids: int) -> float:
    """CPU seconds (user + system) the processes and their children (a server's workers)
    have used so far."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                parent[int(entry)] = int(_stat(int(entry))[1])
    tree, todo = set(pids), list(pids)
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        todo.extend(kids)
    total = 0
    for pid in tree:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(
    pool: Any,
    name: str,
    url: str,
    pids: tuple[int, ...],
    args: argparse.Namespace,
    check: bool,
    rate: float | None,
) -> dict[str, Any]:
    """Saturation (closed loop), then latency at ``rate`` (None: ``--latency-load`` of the
    measured rate). Returns webhooks/s, the latency summary and errors."""
    w = args.workers
    run = secrets.token_hex(3)
    base = {
        "url": url,
        "secret": args.secret,
        "inflight": args.inflight,
        "check": check,
        "client": args.client,
    }
    cpu0 = cpu_s(*pids)
    sat = pool.map(
        run_phase,
        [
            {
                **base,
                "mode": "closed",
                "prefix": f"s{run}{i}",
                "warmup": 100,
                "count": args.count // w,
            }
            for i in range(w)
        ],
    )
    server_cpu_ms = (cpu_s(*pids) - cpu0) * 1000 / (args.count // w * w + 100 * w)
    per_s = sum(r["count"] for r in sat) / max(r["wall_s"] for r in sat)
    errors = sum(r["errors"] for r in sat)
    progress_line(
        f"{name}: {per_s:,.0f} webhooks/s at saturation, {server_cpu_ms:.2f} ms of server CPU "
        f"each ({errors} errors)"
    )
    target = rate if rate is not None else per_s * args.latency_load
    n = max(1, int(target * args.latency_s / w))
    lat = pool.map(
        run_phase,
        [
            {
                **base,
                "mode": "paced",
                "prefix": f"l{run}{i}",
                "warmup": 20,
                "count": n,
                "rate": target / w,
                "inflight": 256,
            }
            for i in range(w)
        ],
    )
    samples = [s for r in lat for s in r["samples"]]
    summary = latency_summary_ms(samples)
    lat_errors = sum(r["errors"] for r in lat)
    progress_line(
        f"{name}: at {target:,.0f}/s p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms"
        f" ({lat_errors} errors)"
    )
    if args.timeline:
        pairs = (p for r in lat for p in zip(r["sent"], r["samples"], strict=True))
        buckets = write_timeline(args.timeline, name, pairs)
        progress_line(f"{name}: latency timeline ({buckets} buckets) written to {args.timeline}")
    return {
        "per_s": round(per_s, 1),
        "server_cpu_ms_per_webhook": round(server_cpu_ms, 3),
        "errors": errors + lat_errors,
        "latency_rate_per_s": round(target, 1),
        "latency": summary,
    }


# --------------------------------------------------------------------------- instructions


async def _send_closed(url: str, secret: str, prefix: str, count: int, check: bool) -> int:
    """``count`` webhooks, 8 in flight; the number of failed ones."""
    import aiohttp

    todo = iter(range(count))
    failed = 0
    async with aiohttp.ClientSession() as http:

        async def loop() -> None:
            nonlocal failed
            for n in todo:
                if not await _post(http, url + PATH, secret, prefix, n, check):
                    failed += 1

        await asyncio.gather(*(loop() for _ in range(8)))
    return failed


def _callgrind_total(path: Path) -> int:
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {path}")


def count_instructions(
    name: str, cmd: list[str], env: dict[str, str] | None, secret: str, port: int, args: Any
) -> dict[str, Any]:
    """Instructions per webhook of one server run under callgrind (see the module's 3.)."""
    tmp = Path(tempfile.mkdtemp(prefix="contactd-bench-cg-"))
    out = tmp / "callgrind.out"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    check = name == "contactd"
    try:
        progress_line(f"{name}: starting under callgrind (contactd takes a few minutes)")
        wait_ready(url, proc, timeout_s=900)
        failed = asyncio.run(_send_closed(url, secret, "w", 200, check))
        dumps = 0

        def window(work: Any) -> tuple[int, float]:
            nonlocal dumps
            subprocess.run(
                ["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True
            )
            t0 = time.perf_counter()
            work()
            wall = time.perf_counter() - t0
            subprocess.run(
                ["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True
            )
            dumps += 1
            path = Path(f"{out}.{dumps}")
            for _ in range(100):
                if path.exists() and "totals:" in path.read_text("utf-8", errors="replace"):
                    break
                time.sleep(0.1)
            return _callgrind_total(path), wall

        idle, idle_s = window(lambda: time.sleep(5))
        progress_line(
            f"{name}: idle {idle / idle_s / 1e6:.1f} M instructions/s; sending {args.count}"
        )
        failed_box: list[int] = []
        total, wall = window(
            lambda: failed_box.append(
                asyncio.run(_send_closed(url, secret, "m", args.count, check))
            )
        )
        failed += failed_box[0]
        if args.callgrind_keep:  # the measured window's profile, for callgrind_annotate
            keep = Path(args.callgrind_keep)
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(f"{out}.{dumps}", keep / f"{name}.callgrind")
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    per = (total - idle / idle_s * wall) / args.count
    progress_line(f"{name}: {per / 1e6:.3f} M instructions per webhook ({failed} failed)")
    return {
        "instructions_per_webhook": round(per),
        "raw_instructions_per_webhook": round(total / args.count),
        "idle_instructions_per_s": round(idle / idle_s),
        "errors": failed,
    }


def run_instructions(args: Any) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    t_start = time.perf_counter()
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="contactd-bench-ivr-") as tmp:
        site = unique_site("ivr")
        args.secret = "bench-ivr-" + secrets.token_hex(8)
        port = free_port()
        redis_url = redis.unix_url if args.redis == "unix" else redis.url
        env = contactd_env(tmp, redis_url, site, port, args.secret, args.event_loop)
        ivr = count_instructions(
            "contactd", [sys.executable, "-m", "contactd", "serve"], env, args.secret, port, args
        )
        bare_port = free_port()
        bare_cmd = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(bare_port)]
        base = count_instructions("bare", bare_cmd, None, args.secret, bare_port, args)
    result = {
        "benchmark": "ivr-instructions",
        "ivr_instructions_per_webhook": ivr["instructions_per_webhook"],
        "bare_instructions_per_webhook": base["instructions_per_webhook"],
        "work_ratio": round(base["instructions_per_webhook"] / ivr["instructions_per_webhook"], 3),
        "ivr": ivr,
        "bare": base,
        "settings": {
            "count": args.count,
            "in_flight": 8,
            "event_loop": args.event_loop,
            "redis": args.redis,
        },
        "machine": machine_info(),
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }
    rows = [
        [n, f"{r['instructions_per_webhook']:,}", f"{r['idle_instructions_per_s']:,}", r["errors"]]
        for n, r in (("contactd", ivr), ("bare aiohttp", base))
    ]
    report(
        args,
        result,
        ["server", "instructions per webhook", "idle instructions/s", "errors"],
        rows,
        f"work ratio bare / contactd: {result['work_ratio']:.3f}",
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run, under 45 s")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--count", type=int, default=None, help="webhooks in the saturation phase")
    ap.add_argument("--inflight", type=int, default=32, help="requests in flight per worker")
    ap.add_argument("--workers", type=int, default=2, help="client processes")
    ap.add_argument(
        "--server-workers",
        default="1",
        help="serving processes of each server (contactd serve --workers; the bare handler as "
        "many processes on one port): a number or auto (one per CPU)",
    )
    ap.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="load generator's HTTP: raw keep-alive sockets (light) or the aiohttp client",
    )
    ap.add_argument("--latency-load", type=float, default=0.5)
    ap.add_argument(
        "--event-loop", choices=["uvloop", "asyncio"], default="uvloop", help="contactd's loop"
    )
    ap.add_argument("--latency-s", type=float, default=None)
    ap.add_argument(
        "--timeline",
        metavar="FILE",
        help="diagnosis: the latency phase's webhooks in 100 ms buckets (count, p50, max) "
        "by send time, per server, written to FILE (JSON)",
    )
    ap.add_argument(
        "--redis",
        choices=["unix", "tcp"],
        default="unix",
        help="how contactd reaches its Redis (unix: as the embedded default)",
    )
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per webhook under valgrind instead (slow, noise-free)",
    )
    ap.add_argument(
        "--server-cprofile", metavar="FILE", help="diagnosis: run contactd under cProfile"
    )
    ap.add_argument(
        "--callgrind-keep",
        metavar="DIR",
        help="with --instructions: keep each server's callgrind profile of the measured "
        "window in DIR (<server>.callgrind, for callgrind_annotate)",
    )
    ap.add_argument("--bare-server", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server is not None:
        bare_server(args.bare_server)
        return
    if args.instructions:
        args.count = args.count or 200
        run_instructions(args)
        return
    args.count = args.count or (3000 if args.quick else 20000)
    args.server_workers = (
        os.cpu_count() or 1 if args.server_workers == "auto" else int(args.server_workers)
    )
    args.latency_s = args.latency_s or (5.0 if args.quick else 20.0)

    t_start = time.perf_counter()
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="contactd-bench-ivr-") as tmp:
        site = unique_site("ivr")
        port = free_port()
        args.secret = "bench-ivr-" + secrets.token_hex(8)
        redis_url = redis.unix_url if args.redis == "unix" else redis.url
        env = contactd_env(tmp, redis_url, site, port, args.secret, args.event_loop)
        serve = ["-m", "contactd", "serve", "--workers", str(args.server_workers)]
        if args.server_cprofile:  # diagnosis: the profile is written when it stops
            serve = ["-m", "cProfile", "-o", args.server_cprofile, *serve]
        server = subprocess.Popen(
            [sys.executable, *serve],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        bare_port = free_port()
        bares = [
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(bare_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            for _ in range(args.server_workers)
        ]
        bare_pids = tuple(b.pid for b in bares)
        try:
            url = f"http://127.0.0.1:{port}"
            bare_url = f"http://127.0.0.1:{bare_port}"
            wait_ready(url, server)
            for b in bares:
                wait_ready(bare_url, b)
            progress_line(
                f"contactd serving on {url} (site {site}); bare handler on {bare_url}; "
                f"{args.server_workers} server process(es) each, {args.workers} client processes"
            )
            watch = CpuWatch()
            watch.start()
            own0 = cpu_s(server.pid, *bare_pids, redis_pid(redis))
            with mp.get_context("spawn").Pool(args.workers) as pool:
                ivr = measure(pool, "contactd", url, (server.pid,), args, True, None)
                rate = ivr["latency_rate_per_s"]
                base = measure(pool, "bare", bare_url, bare_pids, args, False, rate)
            own = cpu_s(server.pid, *bare_pids, redis_pid(redis)) - own0
            cpu = watch.stop(own)  # "other" = neither this run's servers nor its Redis
        finally:
            stop(server)
            for b in bares:
                stop(b)
    ratio = ivr["per_s"] / base["per_s"] if base["per_s"] else 0.0
    result = {
        "benchmark": "ivr",
        "ivr_per_s": ivr["per_s"],
        "bare_per_s": base["per_s"],
        "ratio": round(ratio, 3),
        "server_cpu_ms_per_webhook": ivr["server_cpu_ms_per_webhook"],
        "bare_cpu_ms_per_webhook": base["server_cpu_ms_per_webhook"],
        "p50_ms": ivr["latency"]["p50_ms"],
        "p99_ms": ivr["latency"]["p99_ms"],
        "latency_rate_per_s": ivr["latency_rate_per_s"],
        "ivr": ivr,
        "bare": base,
        "errors": ivr["errors"],
        "settings": {
            "count": args.count,
            "inflight_per_worker": args.inflight,
            "workers": args.workers,
            "server_workers": args.server_workers,
            "client": args.client,
            "latency_load": args.latency_load,
            "latency_s": args.latency_s,
            "database": "sqlite",
            "event_loop": args.event_loop,
            "redis": args.redis,
        },
        "machine": machine_info(),
        "cpu_during_run": cpu,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }
    rows = [
        [
            name,
            f"{r['per_s']:,.0f}",
            r["server_cpu_ms_per_webhook"],
            f"{r['latency_rate_per_s']:,.0f}/s",
            r["latency"]["p50_ms"],
            r["latency"]["p99_ms"],
            r["errors"],
        ]
        for name, r in (("contactd", ivr), ("bare aiohttp", base))
    ]
    report(
        args,
        result,
        ["server", "webhooks/s", "CPU ms each", "latency at", "p50 ms", "p99 ms", "errors"],
        rows,
        f"ratio contactd / bare: {ratio:.2f}   (other processes used "
        f"{cpu['other_cpu_share']:.0%} of the machine during the run)",
    )


def report(
    args: Any, result: dict[str, Any], headers: list[str], rows: list[list[Any]], footer: str
) -> None:
    """The result as one JSON object (``--json``), else a table and a line under it."""
    if args.json:
        print_json(result)
        return
    print(format_table(headers, rows))
    print(f"\n{footer}")


if __name__ == "__main__":
    main()
