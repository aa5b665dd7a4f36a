"""The monitor context as one object handlers and the socket namespace share."""

from __future__ import annotations

from dataclasses import dataclass

from contactd.monitor.actions import SupervisorActions
from contactd.monitor.join import SessionWatch
from contactd.monitor.live import LiveMonitor
from contactd.monitor.reports import Reports
from contactd.monitor.store import EventRecorder


@dataclass(frozen=True)
class Monitor:
    recorder: EventRecorder
    live: LiveMonitor
    actions: SupervisorActions
    reports: Reports
    watch: SessionWatch
