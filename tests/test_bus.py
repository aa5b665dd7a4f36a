"""The in-process event bus: a listener hears the event types it subscribed to (and their
subclasses), every event when it named none, and nothing once it unsubscribed; one
failing listener does not keep the event from the others."""

from __future__ import annotations

from pydantic import BaseModel

from contactd.bus import Bus


class Base(BaseModel):
    n: int


class Child(Base):
    pass


class Other(BaseModel):
    n: int


async def test_listeners_hear_only_the_types_they_subscribed_to() -> None:
    bus = Bus()
    heard: dict[str, list[str]] = {"base": [], "other": [], "all": [], "async": []}
    bus.subscribe(lambda e: heard["base"].append(type(e).__name__), Base)
    bus.subscribe(lambda e: heard["other"].append(type(e).__name__), Other)
    bus.subscribe(lambda e: heard["all"].append(type(e).__name__))

    async def slow(e: BaseModel) -> None:
        heard["async"].append(type(e).__name__)

    stop = bus.subscribe(slow, Child, Other)
    await bus.publish([Base(n=1), Child(n=2), Other(n=3)])
    assert heard == {
        "base": ["Base", "Child"],
        "other": ["Other"],
        "all": ["Base", "Child", "Other"],
        "async": ["Child", "Other"],
    }
    stop()
    await bus.publish([Child(n=4)])
    assert heard["async"] == ["Child", "Other"]
    assert heard["base"][-1] == heard["all"][-1] == "Child"


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus = Bus()
    heard: list[int] = []

    def broken(e: BaseModel) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken, Base)
    bus.subscribe(lambda e: heard.append(e.n), Base)  # type: ignore[attr-defined]
    await bus.publish([Base(n=1), Base(n=2)])
    assert heard == [1, 2]
