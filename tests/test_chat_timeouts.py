"""Chat timeouts over the real socket protocol: idle warning then close, reply alerts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio

from contactd.app import create_app
from contactd.keys import AUTH
from contactd.sessions.timeouts import Seen, fold_leases
from contactd.settings import QueueConfig
from tests.conftest import make_settings


async def wait_for(pred: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if value := pred():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_silent_customer_is_warned_then_the_chat_closes_and_slow_replies_alert(
    aiohttp_server: Callable[..., Any], redis_url: str, site: str, tmp_path: Path, redis: Any
) -> None:
    settings = make_settings(
        site,
        [QueueConfig(id="chat", name="Chat", wrap_up_s=0)],
        redis_url=redis_url,
        data_dir=tmp_path,
        im={
            "customer_idle_warn_s": 1.0,
            "customer_idle_close_s": 2.0,
            "agent_response_alert_s": 1.0,
        },
    )
    server = await aiohttp_server(create_app(settings))
    base = f"http://127.0.0.1:{server.port}"
    await server.app[AUTH].create_user("agent1", "password123", "agent")
    token, _, _ = await server.app[AUTH].login("agent1", "password123")
    agent, customer = socketio.AsyncClient(), socketio.AsyncClient()
    seen: dict[str, list[tuple[str, Any]]] = {"agent": [], "customer": []}

    @agent.on("*", namespace="/agent")
    async def _a(event: str, data: Any) -> None:
        seen["agent"].append((event, data))

    @customer.on("*", namespace="/customer")
    async def _c(event: str, data: Any) -> None:
        seen["customer"].append((event, data))

    try:
        await agent.connect(
            base, namespaces=["/agent"], auth={"token": token}, transports=["websocket"]
        )
        assert (await agent.call("agent.login", {}, namespace="/agent"))["ok"]
        await customer.connect(base, namespaces=["/customer"], auth={}, transports=["websocket"])
        start = await customer.call("chat.start", {}, namespace="/customer")
        sid = start["session"]["session_id"]
        offer = await wait_for(lambda: [d for e, d in seen["agent"] if e == "offer"])
        assert (
            await agent.call("offer.accept", {"offer_id": offer[0]["offer_id"]}, namespace="/agent")
        )["ok"]
        # the customer asks and nobody answers: the agent (and supervisors) are alerted
        await customer.call(
            "message.send",
            {"session_id": sid, "client_msg_id": "q1", "text": "在吗？"},
            namespace="/customer",
        )
        alert = await wait_for(lambda: [d for e, d in seen["agent"] if e == "alert"], 4)
        assert alert[0]["session_id"] == sid and alert[0]["code"] == "reply_overdue"
        # the agent answers, then the customer stays silent: warning, then the chat closes
        await agent.call(
            "message.send",
            {"session_id": sid, "client_msg_id": "a1", "text": "您好，在的"},
            namespace="/agent",
        )
        notice = await wait_for(lambda: [d for e, d in seen["customer"] if e == "notice"], 4)
        assert notice[0]["code"] == "idle_warning"
        ended = await wait_for(
            lambda: [
                d["session"]
                for e, d in seen["customer"]
                if e == "session.updated" and d["session"]["state"] == "ended"
            ],
            5,
        )
        assert ended[0]["end_reason"] == "timeout"
    finally:
        await agent.disconnect()
        await customer.disconnect()


def test_leases_armed_together_end_as_if_armed_one_message_at_a_time() -> None:
    """Messages stored together are armed with one pipeline; the leases must end exactly as
    the per-message rules leave them (policy check over random runs of messages)."""
    settings = make_settings(
        "fold", im={"customer_idle_warn_s": 30.0, "agent_response_alert_s": 10.0}
    )
    rng = random.Random(7)
    for _ in range(300):
        idle: dict[str, int] = {"S1|close": 1, "S2|warn": 2}  # leases already running
        alerts: dict[str, int] = {"S2": 3}
        seen = [
            Seen(
                rng.choice(["S1", "S2", "S3"]),
                rng.choice(["customer", "agent", "system"]),
                100 + n,
                rng.choice(["agent1", None]),
            )
            for n in range(rng.randint(1, 8))
        ]
        # one by one: the rules as stated in ChatTimeouts
        one_idle, one_alerts = dict(idle), dict(alerts)
        for sid, sender, at, agent_id in seen:
            one_idle.pop(f"{sid}|warn", None)
            one_idle.pop(f"{sid}|close", None)
            if sender == "agent":
                one_alerts.pop(sid, None)
                one_idle[f"{sid}|warn"] = at + 30_000
            elif sender == "customer" and agent_id:
                one_alerts.setdefault(sid, at + 10_000)
        # folded: the four commands arm_pending sends, in its order
        leases = fold_leases(seen, settings)
        for member in leases.unidle:
            idle.pop(member, None)
        for sid in leases.answered:
            alerts.pop(sid, None)
        idle.update(leases.warn_at)
        for sid, at in leases.alert_at.items():
            alerts.setdefault(sid, at)
        assert (idle, alerts) == (one_idle, one_alerts), seen
