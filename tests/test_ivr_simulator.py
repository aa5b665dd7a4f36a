"""scripts/ivr_simulator.py as a newcomer runs it: against a running server, with an agent
taking the call on a real socket."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.ivr_helpers import SECRET, MakeVoice, make_voice
from tests.test_chat_sockets import shutdown_guard

__all__ = ["make_voice", "shutdown_guard"]  # fixtures

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ivr_simulator.py"


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_simulated_call_walks_the_menu_queues_and_talks_to_the_agent(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice(ivr={"poll_s": 1})
    agent = await voice.voice_agent("agent1", ["phone"])

    async def take_the_call() -> str:
        offer = await agent.wait("offer", timeout=30)
        await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
        return str(offer["session"]["session_id"])

    taker = asyncio.create_task(take_the_call())
    args = ("--url", voice.base, "--secret", SECRET, "--keys", "1,0", "--talk", "1")
    code, out, err = await _run(*args, "--pause", "0", "--caller", "13812341234")
    assert code == 0, err
    session_id = await taker
    assert "IVR says: 张三您好" in out and "订单尾号" in out
    assert f"session {session_id}" in out and "talking to agent1" in out
    assert out.rstrip().endswith("1 call(s): talked")
    session = (await voice.session(session_id))["session"]
    assert session["channel"] == "voice" and session["state"] == "ended"


async def test_simulator_explains_a_server_without_an_ivr_secret(make_voice: MakeVoice) -> None:
    voice = await make_voice(ivr={"secrets": []})
    code, _, err = await _run("--url", voice.base, "--pause", "0")
    assert code == 2 and "CONTACTD_IVR__SECRETS" in err
