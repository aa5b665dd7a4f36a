"""The JSON module python-socketio and python-engineio use for every packet: orjson, which
encodes and decodes several times faster than the standard library's ``json``. Only the
call shapes those libraries use are supported (``dumps(obj, separators=...)``, ``loads``);
strings go out as UTF-8 rather than ``\\u`` escapes, which every JSON parser reads alike."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any, **_options: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # e.g. a dict keyed by numbers: written as strings, as json does
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(data: str | bytes, **_options: Any) -> Any:
    return orjson.loads(data)  # its JSONDecodeError is a ValueError, as json's is
