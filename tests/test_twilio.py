"""The Twilio-compatible adapter, driven the way Twilio drives it: form posts signed by the
official ``twilio`` package's RequestValidator, our TwiML answers read as XML and checked
verb by verb (and against TwiML the package itself builds)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from tests.chat_helpers import Payload
from tests.ivr_helpers import (
    DIRECT,
    HOTLINE,
    STRANGER,
    TWILIO_TOKEN,
    ZHANG_SAN,
    MakeVoice,
    Voice,
    make_voice,
)
from tests.test_chat_sockets import shutdown_guard

__all__ = ["make_voice", "shutdown_guard"]  # fixtures

SIGNER = RequestValidator(TWILIO_TOKEN)


class Twilio:
    """Posts like Twilio: the whole URL (query included) and the form fields signed."""

    def __init__(self, voice: Voice) -> None:
        self.voice = voice
        self.n = 0

    async def post(
        self, path: str, params: dict[str, str], *, token: str | None = None, sign: bool = True
    ) -> tuple[int, str]:
        url = f"{self.voice.base}/ivr/twilio/{path}"
        self.n += 1
        headers = {"I-Twilio-Idempotency-Token": token or f"idem-{self.n}"}
        if sign:
            headers["X-Twilio-Signature"] = SIGNER.compute_signature(url, params)
        async with self.voice.http.post(url, data=params, headers=headers) as r:
            return r.status, await r.text()

    async def twiml(self, path: str, params: dict[str, str], **kw: Any) -> ET.Element:
        status, text = await self.post(path, params, **kw)
        assert status == 200, text
        root = ET.fromstring(text)
        assert root.tag == "Response"
        return root


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def call(sid: str, **more: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, **more}


async def test_a_twilio_call_through_menu_queue_agent_and_hangup(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    tw = Twilio(voice)
    agent = await voice.voice_agent("agent1", ["phone"])
    sid = "CA" + "1" * 32
    first = await tw.twiml(
        "voice", call(sid, From="+86" + ZHANG_SAN, To=HOTLINE, CallStatus="ringing")
    )
    assert verbs(first) == ["Gather", "Redirect"]
    gather = first[0]
    assert gather.get("action") == "/ivr/twilio/gather?menu=main"
    assert gather.get("input") == "dtmf speech" and gather.get("numDigits") == "1"
    assert gather[0].tag == "Say" and "人工服务请按0" in (gather[0].text or "")

    queued = await tw.twiml("gather?menu=main", call(sid, Digits="0"))
    assert verbs(queued) == ["Say", "Enqueue"]
    enqueue = queued[1]
    assert enqueue.text == "phone" and enqueue.get("waitUrl") == "/ivr/twilio/wait"
    assert enqueue.get("action") == "/ivr/twilio/queue-result"

    offer = await agent.wait("offer")
    assert offer["session"]["channel"] == "voice"
    assert offer["screen_pop"]["customer"]["id"] == "u1001"  # +86 prefix and all
    hold = await tw.twiml("wait", call(sid, QueuePosition="1", QueueTime="3"))
    assert verbs(hold) == ["Say", "Pause"] and hold[1].get("length") == "1"

    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    assert verbs(await tw.twiml("wait", call(sid, QueuePosition="1"))) == ["Leave"]
    dial = await tw.twiml("queue-result", call(sid, QueueResult="leave", QueueTime="9"))
    assert verbs(dial) == ["Say", "Dial"]
    assert dial[1].get("action") == "/ivr/twilio/dial-result"
    [client] = list(dial[1])
    assert client.tag == "Client" and client.text == "agent1"
    assert client.get("statusCallbackEvent") == "answered"

    session_id = offer["session"]["session_id"]
    answered = await tw.twiml(
        "answered", {"CallSid": "CA" + "2" * 32, "ParentCallSid": sid, "CallStatus": "in-progress"}
    )
    assert verbs(answered) == []
    done = await tw.twiml(
        "dial-result", call(sid, DialCallStatus="completed", DialCallDuration="61")
    )
    assert verbs(done) == ["Hangup"]
    expected = VoiceResponse()
    expected.hangup()
    assert ET.tostring(done) == ET.tostring(ET.fromstring(str(expected)))
    session = (await voice.session(session_id))["session"]
    assert session["state"] == "ended" and session["end_reason"] == "resolved"
    # Twilio's final status callback afterwards changes nothing
    assert verbs(await tw.twiml("status", call(sid, CallStatus="completed"))) == []


async def test_twilio_signature_is_checked_and_retries_answer_the_same(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice()
    tw = Twilio(voice)
    sid = "CA" + "3" * 32
    params = call(sid, From=STRANGER, To=DIRECT)
    status, body = await tw.post("voice", params, sign=False)
    assert status == 401 and "signature_invalid" in body
    url = f"{voice.base}/ivr/twilio/voice"
    forged = SIGNER.compute_signature(url, {**params, "To": HOTLINE})
    async with voice.http.post(url, data=params, headers={"X-Twilio-Signature": forged}) as r:
        assert r.status == 401
    assert (await voice.rest("/api/v1/sessions?phone=" + STRANGER, "super1"))[1]["items"] == []

    first = await tw.post("voice", params, token="retry-1")
    again = await tw.post("voice", params, token="retry-1")
    assert first == again and first[0] == 200
    assert verbs(ET.fromstring(first[1])) == ["Say", "Enqueue"]
    items = (await voice.rest("/api/v1/sessions?phone=" + STRANGER, "super1"))[1]["items"]
    assert len(items) == 1


async def test_twilio_hangup_in_queue_abandons_and_voicemail_records(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice()
    tw = Twilio(voice)
    agent = await voice.voice_agent("agent1", ["phone"])
    sid = "CA" + "4" * 32
    await tw.twiml("voice", call(sid, From=STRANGER, To=DIRECT))
    offer = await agent.wait("offer")
    mark = agent.mark()
    assert verbs(await tw.twiml("queue-result", call(sid, QueueResult="hangup"))) == ["Hangup"]
    revoked: Payload = await agent.wait("offer.revoked", since=mark)
    assert revoked["offer_id"] == offer["offer_id"]

    other = "CA" + "5" * 32
    await tw.twiml("voice", call(other, From=ZHANG_SAN, To=HOTLINE))
    record = await tw.twiml("gather?menu=main", call(other, SpeechResult="我要留言"))
    assert verbs(record) == ["Say", "Record", "Hangup"]
    assert record[1].get("action") == "/ivr/twilio/recorded"
    assert record[1].get("maxLength") == "120"
    bye = await tw.twiml(
        "recorded",
        call(other, RecordingUrl="https://api.twilio.example/r/RE1", RecordingDuration="9"),
    )
    assert verbs(bye) == ["Say", "Hangup"]
    page = (await voice.rest("/api/v1/ivr/callbacks", "super1"))[1]
    [cb] = page["items"]
    assert cb["customer_id"] == "u1001" and cb["reason"] == "menu" and cb["recording_s"] == 9
