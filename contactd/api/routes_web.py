"""The browser pages in web_client/, served by contactd (no Node at run time).

/                -> redirect to /demo
/demo            -> web_client/pages/demo.html    (a host site with the chat widget)
/agent           -> web_client/pages/agent.html   (the agent workspace)
/supervisor      -> web_client/pages/supervisor.html
/admin/faq       -> web_client/pages/faq.html     (the bot's knowledge base)
/cases           -> web_client/pages/cases.html       (after-sales ticket desk)
/dashboard       -> web_client/pages/dashboard.html   (case dashboard)
/review          -> web_client/pages/review.html      (compensation review)
/finance         -> web_client/pages/finance.html     (compensation payouts)
/static/...      -> web_client/static/...
/static/vendor/socket.io.min.js -> the official socket.io-client build from npm
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web_client"
SOCKET_IO_CLIENT = WEB_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
PAGES = {"/demo": "demo.html", "/agent": "agent.html", "/supervisor": "supervisor.html"}
PAGES["/admin/faq"] = "faq.html"  # --- bot: the knowledge base ---
PAGES.update({"/cases": "cases.html", "/dashboard": "dashboard.html"})  # --- cases ---
PAGES.update({"/review": "review.html", "/finance": "finance.html"})  # --- cases-money ---


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = WEB_ROOT / "pages" / name
        if not path.is_file():
            raise web.HTTPNotFound(reason=f"page {name} is not built")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return handler


async def _socket_io_client(request: web.Request) -> web.StreamResponse:
    if not SOCKET_IO_CLIENT.is_file():
        raise web.HTTPNotFound(reason="socket.io-client is not installed: run `make install`")
    return web.FileResponse(SOCKET_IO_CLIENT, headers={"Cache-Control": "max-age=3600"})


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/demo")


def install_web(app: web.Application) -> None:
    app.router.add_get("/", _root)
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    app.router.add_get("/static/vendor/socket.io.min.js", _socket_io_client)
    static = WEB_ROOT / "static"
    static.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/static/", static, follow_symlinks=False)
