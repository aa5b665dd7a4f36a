"""Phone-call use cases: each IVR event in, one instruction out.

A call starts in the self-service menu (or goes straight to a queue when its dialled
number or IVR path says so). Asking for an agent — 0, or the words 人工 / agent — works in
every menu, and so many bad inputs in a row do too: nobody is trapped in the IVR. A queued
call is a service session of channel ``voice`` and a routing contact like a chat; the agent
gets the screen-pop looked up by the caller's number."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import NamedTuple

from contactd.channels.ivr import selfservice as ss
from contactd.channels.ivr.callers import CallerLookup
from contactd.channels.ivr.cases import CaseDesk
from contactd.channels.ivr.models import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallIncoming,
    CallMenu,
    CallRecorded,
    CallState,
    CallWaiting,
    Connect,
    Enqueue,
    Gather,
    Hangup,
    Instruction,
    IvrEvent,
    MenuStep,
    Say,
    Voicemail,
)
from contactd.channels.ivr.opener import SessionOpener
from contactd.channels.ivr.repository import IvrRepository
from contactd.channels.ivr.store import IvrStore
from contactd.clock import Clock
from contactd.directory.base import Directory
from contactd.directory.models import Customer, Order
from contactd.directory.verification import PhoneCheck
from contactd.errors import ContactdError, ErrorCode
from contactd.routing.service import RoutingEngine
from contactd.sessions.models import SessionRecord
from contactd.sessions.service import SessionService
from contactd.settings import Settings

log = logging.getLogger(__name__)

ANSWERED_MSG = "call.answered"  # client_msg_id suffix of the "call connected" note


class NewCall(NamedTuple):
    """A call.incoming's call, as its claim left it."""

    state: CallState
    created: bool  # its state was created with the claim (else the call existed)
    number: str | None  # the service number its claim took (a call straight to a queue)


class IvrService:
    def __init__(
        self,
        store: IvrStore,
        repo: IvrRepository,
        sessions: SessionService,
        routing: RoutingEngine,
        directory: Directory,
        cases: CaseDesk,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.repo = repo
        self.sessions = sessions
        self.opener = SessionOpener(sessions)
        self.callers = CallerLookup(directory)
        self.phone_check = PhoneCheck(store.redis, store.keys, directory)
        self.routing = routing
        self.directory = directory
        self.cases = cases
        self.settings = settings
        self.cfg = settings.ivr
        self.clock = clock
        self.t = ss.texts_for(self.cfg.language)
        self.lang = self.cfg.language

    async def handle(
        self,
        event: IvrEvent,
        new_call: NewCall | None = None,
        caller: Awaitable[Customer | None] | None = None,
    ) -> Instruction:
        """``new_call``: a call.incoming's state (``new_call(event)``), whether it was
        created already (with the event's claim) and the service number taken with it;
        without it the state is created here.
        ``caller``: its look-up, started already (``look_up_caller``)."""
        if isinstance(event, CallIncoming):
            return await self._incoming(event, new_call, caller)
        state = await self.store.call(event.call_id)
        if state is None:
            raise ContactdError(
                ErrorCode.unknown_call, f"no call {event.call_id} (send call.incoming first)"
            )
        match event:
            case CallMenu():
                return await self._menu(state, event)
            case CallWaiting():
                return await self._resume(state)
            case CallAnswered():
                return await self._answered(state)
            case CallEnded() | CallAbandoned():
                return await self._ended(state)
            case CallRecorded():
                return await self._recorded(state, event)
        raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover

    # call.incoming --------------------------------------------------------------
    def new_call(self, event: IvrEvent) -> CallState | None:
        """The state a call.incoming event creates (None for other events)."""
        return self._call_state(event) if isinstance(event, CallIncoming) else None

    def number_counter(self, event: IvrEvent) -> tuple[str, str, int] | None:
        """For a call.incoming that goes straight to a queue (its dialled number or IVR path
        names one): the service-number counter its claim takes the session's number from
        (``SessionService.number_counter``). None for anything else."""
        if not isinstance(event, CallIncoming):
            return None
        if self._straight_queue(event) is None and self.cfg.self_service:
            return None
        return self.sessions.number_counter()

    def _straight_queue(self, e: CallIncoming) -> str | None:
        return self.cfg.numbers.get(e.dialled) or (
            self.cfg.paths.get(e.ivr_path) if e.ivr_path else None
        )

    def look_up_caller(self, event: IvrEvent) -> asyncio.Future[Customer | None] | None:
        """A call.incoming's caller look-up, started now: a read, so it may run beside the
        event's claim (and be dropped when the event turns out to be a repeat). Queued for
        the look-ups' next batch, no task of its own; ``handle`` takes it."""
        if not isinstance(event, CallIncoming):
            return None
        return self.callers.later(event.caller)

    def _call_state(self, e: CallIncoming) -> CallState:
        return CallState(
            call_id=e.call_id,
            caller=e.caller,
            dialled=e.dialled,
            ivr_path=e.ivr_path,
            started_at=self.clock.now_ms(),
        )

    async def _incoming(
        self,
        e: CallIncoming,
        new_call: NewCall | None,
        caller: Awaitable[Customer | None] | None,
    ) -> Instruction:
        number = None
        if new_call is not None:
            state, created, number = new_call
            customer = await self._customer(e.caller, caller)
        else:  # claim the call and look the caller up at the same time
            state = self._call_state(e)
            made, customer = await asyncio.gather(
                self.store.create(state), self._customer(e.caller)
            )
            created = made == "created"
        if not created:  # the platform announced the call again (a new event id)
            again = await self.store.call(e.call_id)
            if again is not None:
                return await self._resume(again)
        if customer is not None:
            state.customer_id, state.customer_name = customer.id, customer.name
            state.vip = customer.vip
        greeting = self.t.welcome_back.format(name=customer.name) if customer else self.t.welcome
        queue_id = self._straight_queue(e)
        if queue_id is None and not self.cfg.self_service:
            queue_id = self._voice_queue()
        if queue_id is not None:
            return await self._enqueue(state, queue_id, greeting, number)
        await self.store.save(state)
        return self._main(greeting)

    async def _customer(
        self, phone: str, started: Awaitable[Customer | None] | None = None
    ) -> Customer | None:
        """The caller (None when unknown or the directory is down); ``started``: its
        look-up, under way already (``look_up_caller``)."""
        try:
            return await (started if started is not None else self.callers.customer(phone))
        except ContactdError:
            log.warning("directory unavailable: call from %s not identified", phone[-4:])
            return None

    def _voice_queue(self) -> str:
        queue_id = self.settings.voice_queue()
        if queue_id is None:
            raise ContactdError(ErrorCode.ivr_not_configured, "no voice queue is configured")
        return queue_id

    # menus ------------------------------------------------------------------------
    def _main(self, prefix: str = "") -> Gather:
        return Gather(menu=ss.MAIN, prompt=prefix + self.t.menu, language=self.lang)

    async def _menu(self, state: CallState, e: CallMenu) -> Instruction:
        if state.ended or state.session_id:
            return await self._resume(state)
        choice = ss.choice_of(e.digits, e.speech)
        said = e.digits or (e.speech or "").strip()[:100]
        number = (e.digits or "").rstrip("#")
        if e.menu == ss.ORDER_NO and choice not in ("agent", "repeat") and number:
            return await self._order_by_number(state, e.menu, said, number)
        if e.menu == ss.ORDER_PHONE and len(number) == 4:  # (a tail may start with 0)
            return await self._order_by_phone(state, e.menu, said, number)
        match choice:
            case "agent":
                self._note(state, e.menu, said, "agent")
                return await self._enqueue(state, self._voice_queue(), "")
            case "repeat":
                return self._main()
            case "order" | "logistics":
                if state.customer_id is None:
                    state.meta["want"] = choice
                    self._note(state, e.menu, said, "ask order number")
                    await self.store.save(state)
                    return Gather(
                        menu=ss.ORDER_NO,
                        prompt=self.t.ask_order_no,
                        language=self.lang,
                        num_digits=None,
                        timeout_s=10,
                        speech=False,
                    )
                orders = await self._orders(state.customer_id)
                if orders is None:
                    return await self._answer(state, e.menu, said, self.t.unavailable)
                build = ss.order_answer if choice == "order" else ss.logistics_answer
                return await self._answer(state, e.menu, said, build(self.t, orders[:3]))
            case "cases":
                cases = await self.cases.open_cases(state.customer_id, state.caller)
                return await self._answer(state, e.menu, said, ss.cases_answer(self.t, cases))
            case "voicemail":
                state.voicemail_reason = "menu"
                self._note(state, e.menu, said, "voicemail")
                await self.store.save(state)
                return self._voicemail(self.t.voicemail)
        # nothing we know: count the miss; too many and a person takes over
        state.misses += 1
        self._note(state, e.menu, said or "(no input)", "invalid")
        if state.misses >= self.cfg.max_misses:
            return await self._enqueue(state, self._voice_queue(), "")
        await self.store.save(state)
        return self._main(self.t.invalid)

    def _note(self, state: CallState, menu: str, said: str, answer: str) -> None:
        state.log.append(MenuStep(menu=menu, input=said, answer=answer[:500]))

    async def _answer(self, state: CallState, menu: str, said: str, answer: str) -> Gather:
        state.misses = 0
        self._note(state, menu, said, answer)
        await self.store.save(state)
        return self._main(answer)

    async def _orders(self, customer_id: str) -> list[Order] | None:
        try:
            return await self.directory.orders_of(customer_id, 3)
        except ContactdError:
            return None

    async def _order_by_number(
        self, state: CallState, menu: str, said: str, number: str
    ) -> Instruction:
        try:
            order = None
            for candidate in (number, "O" + number):
                order = await self.directory.order(candidate)
                if order is not None:
                    break
        except ContactdError:
            return await self._answer(state, menu, said, self.t.unavailable)
        if order is None or (state.customer_id and order.customer_id != state.customer_id):
            return await self._answer(state, menu, said, self.t.no_order)
        if state.customer_id is None:  # a number on no account: prove the order is theirs
            if await self.phone_check.locked(order.order_no):
                return await self._answer(state, menu, said, self.t.too_many_tries)
            state.meta["pending_order"] = order.order_no
            self._note(state, menu, said, "ask phone digits")
            await self.store.save(state)
            return Gather(
                menu=ss.ORDER_PHONE,
                prompt=self.t.ask_phone_tail,
                language=self.lang,
                num_digits=4,
                timeout_s=10,
                speech=False,
            )
        return await self._answer(state, menu, said, self._order_text(state, order))

    async def _order_by_phone(
        self, state: CallState, menu: str, said: str, number: str
    ) -> Instruction:
        pending = state.meta.pop("pending_order", None)
        masked = "****"  # the digits are a secret: never in the menu log or the transcript
        if not isinstance(pending, str):
            return await self._answer(state, menu, masked, self.t.no_order)
        try:
            order = await self.directory.order(pending)
            if order is None:
                return await self._answer(state, menu, masked, self.t.no_order)
            if await self.phone_check.locked(order.order_no):
                return await self._answer(state, menu, masked, self.t.too_many_tries)
            if not await self.phone_check.passes(order, number):
                return await self._answer(state, menu, masked, self.t.phone_wrong)
        except ContactdError:
            return await self._answer(state, menu, masked, self.t.unavailable)
        return await self._answer(state, menu, masked, self._order_text(state, order))

    def _order_text(self, state: CallState, order: Order) -> str:
        state.meta["order_no"] = order.order_no
        build = (
            ss.order_answer if state.meta.get("want", "order") == "order" else ss.logistics_answer
        )
        return build(self.t, [order])

    # queue --------------------------------------------------------------------------
    async def _enqueue(
        self, state: CallState, queue_id: str, prefix: str, number: str | None = None
    ) -> Instruction:
        """``number``: the session's service number, when the call took one already."""
        sid = await self.opener.open(
            number,
            channel="voice",
            entry_point="phone",
            queue_id=queue_id,
            visitor_id=None,
            customer_id=state.customer_id,
            customer_name=state.customer_name,
            customer_phone=state.caller,
            order_no=state.meta.get("order_no"),
            meta={"call_id": state.call_id, "dialled": state.dialled, "ivr_path": state.ivr_path},
        )
        state.session_id, state.queue_id = sid, queue_id
        if state.log:  # before the offer, so the agent's screen-pop has what the IVR did
            await self.sessions.system_message(sid, "ivr", self._transcript(state))
        priority = self.settings.im.vip_priority if state.vip else 0
        try:
            contact = await self.routing.enqueue(
                queue_id,
                priority=priority,
                contact_id=sid,
                meta={"session": sid, "call": state.call_id},
            )
        except ContactdError as exc:
            if exc.code != ErrorCode.queue_full:
                raise
            # never queued: the session records the call that was asked for a message
            await self.sessions.change(
                sid, state="ended", ended_at=self.clock.now_ms(), end_reason="left_message"
            )
            state.voicemail_reason, state.outcome = "queue_full", "abandoned"
            await self.store.save(state)
            return self._voicemail(prefix + self.t.queue_full)
        state.outcome = "agent"
        await self.store.save(state)
        position = contact.position or 0
        wait = await self.sessions.queue_wait_estimate(queue_id, position)
        return Enqueue(
            queue_id=queue_id,
            session_id=sid,
            position=position,
            estimated_wait_s=wait,
            text=prefix + ss.queued_text(self.t, position, wait),
            language=self.lang,
            poll_after_s=self.cfg.poll_s,
        )

    def _transcript(self, state: CallState) -> str:
        steps = "; ".join(f"[{s.menu}] {s.input} → {s.answer}" for s in state.log)
        return f"IVR 自助记录 / IVR log: {steps}"

    async def _session(self, state: CallState) -> SessionRecord | None:
        if state.session_id is None:
            return None
        try:
            return await self.sessions.get(state.session_id)
        except ContactdError:
            return None

    async def _resume(self, state: CallState) -> Instruction:
        """Where the call stands now: the answer to a hold-loop poll or a repeated event."""
        if state.ended:
            return Hangup()
        record = await self._session(state)
        if record is None:
            if state.voicemail_reason is not None:
                return self._voicemail(self._ask_message(state.voicemail_reason))
            return self._main()
        if record.state in ("queued", "offered"):
            position = await self.routing.position(record.contact_id, record.queue_id) or 0
            wait = await self.sessions.queue_wait_estimate(record.queue_id, position)
            return Enqueue(
                queue_id=record.queue_id,
                session_id=record.id,
                position=position,
                estimated_wait_s=wait,
                text=ss.queued_text(self.t, position, wait),
                language=self.lang,
                poll_after_s=self.cfg.poll_s,
            )
        if record.state == "active" and record.agent_id:
            return Connect(
                agent_id=record.agent_id,
                endpoint=self.cfg.agent_endpoint.format(agent_id=record.agent_id),
                session_id=record.id,
                text=self.t.connecting,
                language=self.lang,
            )
        if record.end_reason == "left_message":  # a full queue, or waited too long
            if state.voicemail_reason is None:
                state.voicemail_reason = "overflow"
                await self.store.save(state)
            return self._voicemail(self._ask_message(state.voicemail_reason))
        return Say(text=self.t.goodbye, language=self.lang)

    def _ask_message(self, reason: str) -> str:
        return {"queue_full": self.t.queue_full, "overflow": self.t.overflow}.get(
            reason, self.t.voicemail
        )

    def _voicemail(self, text: str) -> Voicemail:
        return Voicemail(text=text, language=self.lang, max_length_s=self.cfg.voicemail_max_s)

    # the call connected, ended, left a message -------------------------------------
    async def _answered(self, state: CallState) -> Instruction:
        record = await self._session(state)
        if record is not None and record.state == "active" and "answered_at" not in state.meta:
            state.meta["answered_at"] = self.clock.now_ms()
            await self.store.save(state)
            await self.sessions.system_message(record, ANSWERED_MSG, "通话已接通 / Call connected")
        return await self._resume(state)

    async def _ended(self, state: CallState) -> Instruction:
        if state.ended:
            return Hangup()
        record = await self._session(state)
        if record is not None and record.state != "ended":
            if record.state == "active" and "answered_at" in state.meta:
                await self.routing.end(
                    record.contact_id, agent_id=record.agent_id, reason="resolved"
                )
            else:  # still waiting (or ringing the agent): the offer is withdrawn at once
                await self.routing.cancel(record.contact_id, "customer_left")
                if record.state != "active":
                    state.outcome = "abandoned"
        state.ended = True
        await self.store.save(state)
        await self.repo.record_call(state, self.clock.now_ms())
        return Hangup()

    async def _recorded(self, state: CallState, e: CallRecorded) -> Instruction:
        callback, created = await self.repo.add_callback(
            state,
            state.voicemail_reason or "menu",
            e.recording_url,
            e.duration_s,
            self.clock.now_ms(),
        )
        if created:
            ticket = await self.cases.ticket_for_voicemail(callback)
            if ticket is not None:
                await self.repo.set_ticket(callback.id, ticket)
        state.outcome = "voicemail"
        await self.store.save(state)
        return Say(text=self.t.voicemail_thanks, language=self.lang)
