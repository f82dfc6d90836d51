"""A stream processor's `publish` step: its input's rows (events, or closed windows) written to
another Redis stream as entries with one field, `payload` (the row as JSON), so another streaming
spec reads them with `payload: payload`. Each row is written once however often its batch is
redone (a crash before the commit, a rolled-back batch): the script remembers each row's identity
(the source entry id; for a window its keys, window_start and window_end) for a day in a sorted set beside the
stream, `<stream>:published`."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from headwater.errors import TransientError

if TYPE_CHECKING:
    import redis

REMEMBER_MS = 86_400_000
"""How long an identity is remembered (a batch is redone within minutes, not days)."""

_PUBLISH_ONCE = """
-- KEYS[1] stream, KEYS[2] sorted set of identities; ARGV: identity, now ms, keep ms, maxlen, payload
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'payload', ARGV[5])
else
  redis.call('XADD', KEYS[1], '*', 'payload', ARGV[5])
end
return 1
"""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def identities(frame: pl.DataFrame, keys: list[str] | None) -> list[str]:
    """Each row's identity: its `_entry_id`, or (windows) its keys and bounds as JSON."""
    if keys is None:
        return [str(i) for i in frame["_entry_id"].to_list()]
    cols = [*keys, "window_start", "window_end"]  # a running total's end moves with each update
    return [json.dumps([_plain(v) for v in row], default=str) for row in frame.select(cols).iter_rows()]


def publish(
    client: redis.Redis, stream: str, frame: pl.DataFrame, keys: list[str] | None, maxlen: int | None
) -> int:
    """Write each row of `frame` once; the number newly written. `keys` None: events (identified by
    `_entry_id`); else the window keys."""
    import redis as redis_lib

    if frame.height == 0:
        return 0
    script = client.register_script(_PUBLISH_ONCE)
    now = str(int(time.time() * 1000))
    ids = identities(frame, keys)
    try:
        pipe = client.pipeline(transaction=False)
        for identity, row in zip(ids, frame.iter_rows(named=True), strict=True):
            payload = json.dumps({k: _plain(v) for k, v in row.items()}, default=str)
            script(
                keys=[stream, f"{stream}:published"],
                args=[identity, now, REMEMBER_MS, maxlen or 0, payload],
                client=pipe,
            )
        return sum(int(r) for r in pipe.execute())
    except redis_lib.RedisError as exc:
        raise TransientError(f"redis: publishing to {stream} failed: {exc}") from exc
