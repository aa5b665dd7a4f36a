"""A running contactd with the phone channel on, for the IVR and Twilio tests: real server,
real Redis, real SQL, real sockets for the agents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contactd.app import create_app
from contactd.channels.ivr.client import IvrClient
from contactd.directory.demo import seed_demo_directory
from contactd.keys import AUTH, DB
from contactd.settings import QueueConfig
from tests.chat_helpers import Payload, Peer
from tests.conftest import make_settings
from tests.test_chat_sockets import PASSWORD, STAFF, Chat

SECRET = "ivr-secret-for-tests"
OLD_SECRET = "ivr-secret-being-rotated-out"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
DIRECT = "4000000001"  # dialled number that goes straight to the phone queue
HOTLINE = "4008001234"  # dialled number that hears the menu
ZHANG_SAN = "13812341234"  # u1001 in the demo directory
STRANGER = "13700000000"


def voice_queues() -> list[QueueConfig]:
    return [
        QueueConfig(id="sales", name="Sales", strategy="idle", wrap_up_s=0),
        QueueConfig(id="phone", name="Phone", channel="voice", strategy="idle", wrap_up_s=0),
        QueueConfig(id="tiny", name="Tiny", channel="voice", wrap_up_s=0, max_waiting=1),
        QueueConfig(
            id="patient",
            name="Patient",
            channel="voice",
            wrap_up_s=0,
            max_wait_s=0.3,
            overflow_to="message",
        ),
    ]


class Voice(Chat):
    """A server with the phone channel, an IVR platform posting to it, and agents."""

    def __init__(self, base: str, app: Any, http: aiohttp.ClientSession) -> None:
        super().__init__(base, app)
        self.http = http
        self.ivr = IvrClient(base, SECRET, http)

    async def voice_agent(self, username: str, queues: list[str], chat: int = 2) -> Peer:
        peer = await self.peer("/agent", {"token": await self.token(username)})
        ack = await peer.ok(
            "agent.login", {"queues": queues, "capacity": {"chat": chat, "voice": 1}}
        )
        assert ack["agent"]["state"] == "available"
        return peer

    async def session(self, session_id: str) -> Payload:
        status, body = await self.rest(f"/api/v1/sessions/{session_id}", "super1")
        assert status == 200, body
        found: Payload = body
        return found


MakeVoice = Callable[..., Awaitable[Voice]]


@pytest.fixture
async def make_voice(
    shutdown_guard: None,
    aiohttp_server: Callable[..., Any],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[MakeVoice]:
    made: list[Voice] = []
    http = aiohttp.ClientSession()

    async def make(ivr: Payload | None = None, routing: Payload | None = None) -> Voice:
        assert not made, "one server per test"
        settings = make_settings(
            site,
            voice_queues(),
            redis_url=redis_url,
            data_dir=tmp_path,
            im={"entry_points": {"home": "sales"}},
            routing={"sweep_interval_s": 0.05, "disconnect_grace_s": 0.5, **(routing or {})},
            ivr={
                "secrets": [SECRET, OLD_SECRET],
                "twilio_auth_token": TWILIO_TOKEN,
                "queue": "phone",
                "numbers": {DIRECT: "phone"},
                "poll_s": 1,
                **(ivr or {}),
            },
        )
        server = await aiohttp_server(create_app(settings))
        for username, (role, name) in STAFF.items():
            await server.app[AUTH].create_user(username, PASSWORD, role, name)
        await seed_demo_directory(server.app[DB], customers=2)
        voice = Voice(f"http://{server.host}:{server.port}", server.app, http)
        made.append(voice)
        return voice

    yield make
    for voice in made:
        await voice.close()
    await http.close()
