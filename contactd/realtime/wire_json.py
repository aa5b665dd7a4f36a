"""The JSON module python-socketio and python-engineio use for every packet (see
``contactd/fastjson.py``)."""

from contactd.fastjson import dumps, loads

__all__ = ["dumps", "loads"]
