"""The one reading of a duration a person writes: 30, 2.5, "30s", "5m", "1h", "2d", "2w", "250ms"."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any, *, allow_zero: bool = False) -> float:
    """Seconds (a bare number is seconds); ValueError saying how to write one otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a duration: write e.g. 30, '30s', '5m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; write e.g. 30, '30s', '5m' or '1h'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        if allow_zero:
            raise ValueError(f"a duration must be >= 0, got {value!r}")
        raise ValueError("a duration must be positive: give e.g. '30s'")
    return seconds
