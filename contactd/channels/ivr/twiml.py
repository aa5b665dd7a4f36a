"""Instructions as TwiML, so a Twilio-compatible platform can be pointed at contactd.

The call flow in TwiML terms: the menu is a ``<Gather>`` posting to ``gather``; a queued
caller is held in ``<Enqueue>`` whose ``waitUrl`` (``wait``) is our hold loop: it answers
``<Say>`` the position and ``<Pause>`` while waiting, and ``<Leave>`` once an agent accepted
(or the caller must leave a message); the Enqueue ``action`` (``queue-result``) then
``<Dial>``s the agent, whose pick-up posts ``answered``; a voicemail is ``<Record>``."""

from __future__ import annotations

from typing import Literal

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from contactd.channels.ivr.models import (
    Connect,
    Enqueue,
    Hangup,
    Instruction,
    Say,
    Voicemail,
)
from contactd.channels.ivr.models import Gather as GatherInstruction

BASE = "/ivr/twilio"
Mode = Literal["call", "hold", "callback"]


def _dial_target(dial: Dial, endpoint: str) -> None:
    opts = {"status_callback_event": "answered", "status_callback": f"{BASE}/answered"}
    if endpoint.startswith("sip:"):
        dial.sip(endpoint, **opts)
    elif endpoint.startswith("client:"):
        dial.client(endpoint[len("client:") :], **opts)
    else:
        dial.number(endpoint, **opts)


def to_twiml(instruction: Instruction, mode: Mode = "call") -> str:
    """TwiML for ``instruction``. ``mode``: "hold" inside the Enqueue waitUrl (only Say,
    Pause, Leave and Hangup are allowed there), "callback" for status callbacks (Twilio
    ignores the body)."""
    r = VoiceResponse()
    if mode == "callback":
        return str(r)
    match instruction:
        case Enqueue() if mode == "hold":
            r.say(instruction.text, language=instruction.language)
            r.pause(length=instruction.poll_after_s)
        case Connect() | Voicemail() if mode == "hold":
            r.leave()  # the Enqueue action (queue-result) continues the call
        case Say():
            r.say(instruction.text, language=instruction.language)
            r.hangup()
        case GatherInstruction():
            action = f"{BASE}/gather?menu={instruction.menu}"
            g = Gather(
                input="dtmf speech" if instruction.speech else "dtmf",
                action=action,
                method="POST",
                timeout=instruction.timeout_s,
                finish_on_key=instruction.finish_on_key,
                language=instruction.language,
                **({"num_digits": instruction.num_digits} if instruction.num_digits else {}),
            )
            g.say(instruction.prompt, language=instruction.language)
            r.append(g)
            r.redirect(action, method="POST")  # no input: the menu counts a miss
        case Enqueue():
            r.say(instruction.text, language=instruction.language)
            r.enqueue(
                instruction.queue_id,
                wait_url=f"{BASE}/wait",
                wait_url_method="POST",
                action=f"{BASE}/queue-result",
                method="POST",
            )
        case Connect():
            r.say(instruction.text, language=instruction.language)
            dial = Dial(action=f"{BASE}/dial-result", method="POST")
            _dial_target(dial, instruction.endpoint)
            r.append(dial)
        case Voicemail():
            r.say(instruction.text, language=instruction.language)
            r.record(
                action=f"{BASE}/recorded",
                method="POST",
                max_length=instruction.max_length_s,
                finish_on_key=instruction.finish_on_key,
                play_beep=True,
            )
            r.hangup()
        case Hangup():
            r.hangup()
    return str(r)


def error_twiml(text: str, language: str) -> str:
    """What a caller hears when their call cannot go on (the platform needs TwiML)."""
    r = VoiceResponse()
    r.say(text, language=language)
    r.hangup()
    return str(r)
