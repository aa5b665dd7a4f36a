"""Fast JSON for the hot paths: orjson, which encodes and decodes several times faster
than the standard library's ``json``. Compact, strings as UTF-8 rather than ``\\u``
escapes (every JSON parser reads them alike). Also the JSON module python-socketio and
python-engineio use for every packet (``realtime/wire_json.py``): only the call shapes
those libraries use are supported (``dumps(obj, separators=...)``, ``loads``)."""

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
