"""`contactd serve | check-config | migrate | seed-demo | create-user`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from contactd.errors import ContactdError, ErrorCode
from contactd.logs import setup_logging
from contactd.settings import ConfigError, Settings, load_settings

log = logging.getLogger("contactd")

DEMO_STAFF: tuple[tuple[str, str, str], ...] = (
    ("admin", "admin", "管理员 Admin"),
    ("lead1", "team_lead", "组长 Lead One"),
    ("super1", "supervisor", "主管 Supervisor"),
    ("agent1", "agent", "客服一 Agent One"),
    ("agent2", "agent", "客服二 Agent Two"),
    ("agent3", "senior_agent", "资深客服 Senior Agent"),
    ("review1", "reviewer", "审核 Reviewer"),
    ("finance1", "finance", "财务 Finance"),
)
DEMO_PASSWORD = "contactd-demo"


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def cmd_check_config(args: argparse.Namespace) -> int:
    s = _settings(args)
    print(
        f"configuration is valid: site {s.site!r}, {len(s.queues)} queues "
        f"({', '.join(q.id for q in s.queues)}), data under {s.data_dir}"
    )
    print("redis: " + (s.redis_url or "embedded redis-server under the data directory"))
    return 0


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The server's event loop: uvloop (the default) or asyncio's own."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# The garbage collector's thresholds while serving (Python's are 700, 10, 10): with 1,000
# chat connections the default made about 1,850 young, 170 middle and 15 full collections
# in a minute and a half of load, the full ones stalling the event loop 100-190 ms each;
# with these, 10 young and 1 full (docs/benchmarks.md, "GC: the collector's stalls").
# Reference counting frees almost everything anyway: the collector only finds cycles.
GC_THRESHOLDS = (50_000, 20, 20)


async def _settle_heap(_: object) -> None:
    """What start-up made (modules, schemas, the services) lives as long as the process:
    moved out of the collector's way (``gc.freeze``), so a collection walks only what
    serving creates."""
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from contactd.app import create_app
    from contactd.workers import outlive_no_supervisor, run_pool, worker_count

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.workers is not None:
        overrides["workers"] = args.workers
    s = load_settings(Path(args.config) if args.config else None, **overrides)
    setup_logging(s.log_level, s.log_format)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    count = worker_count(s.workers)
    if args.pool_worker is None and count > 1:
        return _serving(s, lambda: run_pool(s, count, args.config, s.event_loop))
    app = create_app(s)
    gc.set_threshold(*GC_THRESHOLDS)
    app.on_startup.append(_settle_heap)  # (after every service started)
    loop = new_event_loop(s.event_loop)
    in_pool = args.pool_worker is not None
    if in_pool and args.lifeline is not None:
        app.cleanup_ctx.append(outlive_no_supervisor(args.lifeline))
    log.info(
        "contactd %s on http://%s:%s (site %s, %s event loop)",
        f"worker {args.pool_worker} serving" if in_pool else "starting",
        s.host,
        s.port,
        s.site,
        s.event_loop,
    )

    def serve() -> int:
        web.run_app(
            app,
            host=s.host,
            port=s.port,
            reuse_port=in_pool,
            shutdown_timeout=15,
            print=None,
            access_log=None,
            loop=loop,
        )
        return 0

    return _serving(s, serve)


_PORT_ERRORS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


def _serving(s: Settings, serve: Callable[[], int]) -> int:
    """``serve()``, with the reasons it cannot start (no Redis, the port) said in one line
    and exit code 2 (a pool's supervisor stops on a worker's 2: ``workers.CANNOT_START``)."""
    from contactd.storage.redis import RedisUnavailable

    try:
        return serve()
    except RedisUnavailable as exc:
        print(f"contactd cannot start: {exc}", file=sys.stderr)
    except OSError as exc:
        if exc.errno not in _PORT_ERRORS:
            raise
        print(f"contactd cannot start on {s.host}:{s.port}: {exc.strerror}", file=sys.stderr)
    return 2


async def _with_auth(s: Settings, fn: str, *a: object) -> object:
    from contactd.auth.audit import AuditLog
    from contactd.auth.passwords import password_hasher
    from contactd.auth.service import AuthService
    from contactd.clock import SystemClock
    from contactd.storage.db import migrate, open_database

    s.data_dir.mkdir(parents=True, exist_ok=True)
    engine = await open_database(s.effective_database_url)
    try:
        await migrate(engine)
        clock = SystemClock()
        auth = AuthService(
            engine, s, clock, audit=AuditLog(engine, clock), passwords=password_hasher(s)
        )
        return await getattr(auth, fn)(*a)
    finally:
        await engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    from contactd.storage.db import migrate, open_database

    s = _settings(args)

    async def run() -> None:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        engine = await open_database(s.effective_database_url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    print("database is up to date")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    s = _settings(args)
    password = os.environ.get("CONTACTD_NEW_PASSWORD")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        password = getpass.getpass(f"password for {args.username}: ")
    staff = asyncio.run(
        _with_auth(s, "create_user", args.username, password, args.role, args.display_name)
    )
    print(f"created {getattr(staff, 'username', args.username)} ({args.role})")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    s = _settings(args)

    async def run() -> list[str]:
        created = []
        for username, role, name in DEMO_STAFF:
            if role not in s.roles:
                continue
            try:
                await _with_auth(s, "create_user", username, DEMO_PASSWORD, role, name)
                created.append(f"{username} ({role})")
            except ContactdError as exc:
                if exc.code is not ErrorCode.user_exists:
                    raise
        return created

    async def directory() -> int:
        from contactd.channels.bot.demo import seed_demo_faqs  # --- bot ---
        from contactd.clock import SystemClock
        from contactd.directory.demo import seed_demo_directory
        from contactd.storage.db import migrate, open_database

        engine = await open_database(s.effective_database_url)
        try:
            await migrate(engine)
            added = await seed_demo_directory(engine)
            added += await seed_demo_faqs(engine, SystemClock())  # --- bot ---
            return added
        finally:
            await engine.dispose()

    created = asyncio.run(run())
    if created:
        print(f"demo accounts (password {DEMO_PASSWORD!r}): {', '.join(created)}")
    else:
        print("demo accounts already exist")
    added = asyncio.run(directory())
    print(f"demo shop data: {added} records added" if added else "demo shop data already there")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contactd", description="contact-center server")
    p.add_argument("--config", help="TOML config file (default: $CONTACTD_CONFIG, else built-in)")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers",
        help="serving processes sharing the port: a number, or auto for one per CPU "
        "(default: the workers setting, 1)",
    )
    serve.add_argument("--pool-worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--lifeline", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(fn=cmd_serve)
    sub.add_parser("check-config", help="validate the configuration").set_defaults(
        fn=cmd_check_config
    )
    sub.add_parser("migrate", help="create or upgrade the database").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed-demo", help="create demo staff accounts").set_defaults(fn=cmd_seed_demo)
    cu = sub.add_parser("create-user", help="create a staff account")
    cu.add_argument("username")
    cu.add_argument("--role", required=True)
    cu.add_argument("--display-name")
    cu.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (else $CONTACTD_NEW_PASSWORD or a prompt)",
    )
    cu.set_defaults(fn=cmd_create_user)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except ConfigError as exc:
        print(f"contactd: {exc}", file=sys.stderr)
        return 2
    except ContactdError as exc:
        print(f"contactd: {exc.message} ({exc.code.value})", file=sys.stderr)
        return 1
