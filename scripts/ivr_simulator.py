"""Place phone calls against a running contactd, as an IVR platform would: signed webhooks
(docs/protocol.md, "IVR webhooks"), following each instruction contactd answers with.

Start the server with an IVR secret, sign in as an agent in the browser, then call::

    CONTACTD_IVR__SECRETS='["dev-ivr-secret"]' make serve
    # http://127.0.0.1:8080/agent: sign in as agent1, go available
    .venv/bin/python scripts/ivr_simulator.py                 # one call: menu 1, then 0
    .venv/bin/python scripts/ivr_simulator.py --calls 3 --keys 0 --talk 20

Each caller walks the menu with ``--keys`` (1 order status, 2 delivery, 3 refunds, 9 leave
a message, 0 an agent), waits in the queue (polling ``call.waiting`` as the hold music
plays), is connected when an agent accepts in the browser, tells contactd the call was
answered, talks for ``--talk`` seconds (or until the agent ends the call in the
workspace) and hangs up (``call.ended``). A caller who waits longer than ``--max-wait``
hangs up in the queue (``call.abandoned``). Progress goes to stdout, one line per step.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contactd.channels.ivr.client import IvrClient, Reply

# demo customers (contactd seed-demo) and a stranger
CALLERS = ("13812341234", "13911112222", "13700000000")
_T0 = time.monotonic()


def say(call_id: str, text: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {call_id}  {text}", flush=True)


class Trouble(Exception):
    pass


def check(reply: Reply) -> dict[str, Any]:
    if reply.status == 200:
        return reply.instruction
    code = reply.error_code
    hints = {
        "ivr_not_configured": "the server has no IVR secret: start it with "
        "CONTACTD_IVR__SECRETS='[\"dev-ivr-secret\"]' (and pass the same --secret here)",
        "signature_invalid": "the server uses another secret: pass it with --secret",
        "signature_stale": "this machine's clock and the server's differ by more than 5 min",
    }
    raise Trouble(hints.get(code or "", f"HTTP {reply.status}: {reply.body}"))


async def place_call(ivr: IvrClient, args: argparse.Namespace, n: int) -> str:
    call_id = f"SIM-{secrets.token_hex(4)}"
    caller = args.caller or CALLERS[n % len(CALLERS)]
    keys = [k for k in args.keys.split(",") if k]
    say(call_id, f"ringing: {caller} calls {args.dialled}")
    step = check(await ivr.incoming(call_id, caller, args.dialled))
    queued_at = time.monotonic()
    while True:
        action = step["action"]
        if action == "gather":
            say(call_id, f"IVR says: {step['prompt']}")
            key = keys.pop(0) if keys else "0"
            digits = key + ("#" if step.get("num_digits") is None and key not in "0*" else "")
            say(call_id, f"caller presses {digits}")
            await asyncio.sleep(args.pause)
            step = check(await ivr.menu(call_id, step["menu"], digits=digits))
        elif action == "enqueue":
            wait = step.get("estimated_wait_s")
            say(
                call_id,
                f"on hold in {step['queue_id']} (session {step['session_id']}): position "
                f"{step['position']}" + (f", about {wait} s" if wait else ""),
            )
            if time.monotonic() - queued_at > args.max_wait:
                say(call_id, "caller gives up and hangs up")
                check(await ivr.abandoned(call_id))
                return "abandoned"
            await asyncio.sleep(step["poll_after_s"])
            step = check(await ivr.waiting(call_id))
        elif action == "connect":
            say(call_id, f"connecting to {step['agent_id']} at {step['endpoint']}")
            await asyncio.sleep(args.pause)
            check(await ivr.answered(call_id))
            say(call_id, f"talking to {step['agent_id']}")
            deadline = time.monotonic() + args.talk
            while time.monotonic() < deadline:
                await asyncio.sleep(2)
                if check(await ivr.waiting(call_id))["action"] != "connect":
                    say(call_id, "the agent ended the call")
                    break
            check(await ivr.ended(call_id, duration_s=int(args.talk)))
            say(call_id, "hung up")
            return "talked"
        elif action == "voicemail":
            say(call_id, f"IVR says: {step['text']}")
            await asyncio.sleep(args.pause)
            step = check(
                await ivr.recorded(call_id, f"https://recordings.invalid/{call_id}.wav", 12)
            )
        elif action == "say":
            say(call_id, f"IVR says: {step['text']}")
            check(await ivr.ended(call_id))
            return "done"
        else:  # hangup
            say(call_id, "IVR hung up")
            check(await ivr.ended(call_id))
            return "done"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--secret", default="dev-ivr-secret", help="the server's ivr.secrets entry")
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between calls")
    ap.add_argument("--caller", default=None, help="caller number (default: demo customers)")
    ap.add_argument("--dialled", default="4008001234", help="number called")
    ap.add_argument("--keys", default="1,0", help="menu keys pressed in turn (then 0)")
    ap.add_argument("--talk", type=float, default=30.0, help="seconds on the line")
    ap.add_argument("--max-wait", type=float, default=300.0, help="hang up after waiting")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds a caller takes per step")
    args = ap.parse_args()
    async with aiohttp.ClientSession() as http:
        ivr = IvrClient(args.url.rstrip("/"), args.secret, http)
        tasks = []
        for n in range(args.calls):
            tasks.append(asyncio.create_task(place_call(ivr, args, n)))
            await asyncio.sleep(args.interval)
        try:
            results = await asyncio.gather(*tasks)
        except Trouble as exc:
            print(f"stopped: {exc}", file=sys.stderr)
            return 2
        except aiohttp.ClientConnectionError as exc:
            print(f"cannot reach {args.url}: {exc} (is `make serve` running?)", file=sys.stderr)
            return 2
    print(f"{len(results)} call(s): " + ", ".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
