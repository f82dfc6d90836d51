"""The broker behind a stream processor: read a batch, acknowledge, dead-letter. `StreamBroker` is
the interface (a second broker implements the same calls); `RedisStreamBroker` is Redis Streams
with a consumer group."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from headwater.errors import PermanentError, TransientError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One stream entry as delivered: its id, its field-value pairs, how often it was delivered."""

    id: str
    fields: dict[str, str]
    deliveries: int = 1


@dataclass(frozen=True)
class DeadLetter:
    """An entry set aside: why (`rules`, `poison`, `unparseable`), the rules it broke, and its
    values with PII masked."""

    entry: Entry
    reason: str
    rules: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as a number pair that sorts as the stream does."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class StreamBroker(Protocol):
    consumer: str
    """This consumer's name in the group."""

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) when missing."""

    def read(self, count: int, block_ms: int) -> list[Entry]:
        """Up to `count` entries, oldest first: this consumer's own unacknowledged entries first
        (after a restart or a lost connection), then entries other consumers left pending longer than
        the claim timeout, then new ones, waiting up to `block_ms` for them."""

    @property
    def contiguous(self) -> bool:
        """Whether the last read returned every stream entry between its first and last id."""

    def owned(self, ids: list[str]) -> set[str]:
        """Those of `ids` still pending for this consumer (not acknowledged, not claimed away)."""

    def pending_floor(self) -> str | None:
        """The group's oldest pending entry id (None: nothing pending)."""

    def pending(self) -> int | None:
        """Entries the group has read and not acknowledged (None: the broker cannot tell)."""

    def reset(self) -> None:
        """After a failure: read this consumer's own pending entries again before new ones."""

    def ack(self, ids: list[str]) -> None:
        """Acknowledge: these entries are done and never delivered again."""

    def dead_letter(self, letters: list[DeadLetter], processor: str) -> int:
        """Write each letter to the dead-letter stream once, however often this is called for it
        (a redelivered batch); the number newly written."""

    def lag(self) -> int | None:
        """Entries of the stream the group has not read yet (None: the broker cannot tell)."""


def _transient(exc: Exception, what: str) -> TransientError:
    return TransientError(f"redis: {what} failed: {exc}")


class RedisStreamBroker:
    """A consumer of `stream` in `group`, dead-lettering to `dead_stream`. A dead letter is added with
    the source entry's own id, so writing it again (a batch redelivered after a crash) is refused by
    Redis as "equal or smaller" and recognised by reading that id back: each dead letter exists once."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        dead_stream: str,
        start: str = "0",
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.client, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.dead_stream, self.start, self.claim_idle_ms = dead_stream, start, claim_idle_ms
        self._own_after: str | None = "0"  # reading our own pending entries from here; None: new ones
        self._claim_from = "0-0"  # XAUTOCLAIM's cursor
        self._next_claim = 0.0  # monotonic time of the next claim attempt
        self._contiguous = False
        self._dead_once = client.register_script(_DEAD_ONCE)

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> RedisStreamBroker:
        import redis

        client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=120, socket_connect_timeout=5, health_check_interval=10
        )
        return cls(client, **kwargs)

    def ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise PermanentError(
                    f"redis: cannot create group {self.group} on {self.stream}: {exc}",
                    hint="check that the key is a stream",
                ) from exc
        except redis.RedisError as exc:
            raise _transient(exc, "creating the consumer group") from exc

    def read(self, count: int, block_ms: int) -> list[Entry]:
        import redis

        self._contiguous = False
        try:
            if self._own_after is not None:
                entries = self._read_own(count)
                if entries:
                    return entries
                self._own_after = None
            if time.monotonic() >= self._next_claim:
                entries = self._claim(count)
                if entries:
                    return entries
            reply = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        except redis.RedisError as exc:
            raise _transient(exc, "reading") from exc
        self._contiguous = True
        return _entries(reply)

    @property
    def contiguous(self) -> bool:
        return self._contiguous

    def _claim(self, count: int) -> list[Entry]:
        """Entries pending with another consumer for longer than claim_idle_ms, now ours (XAUTOCLAIM
        counts a delivery). Scanned from where the last claim stopped; once the scan wraps, the next
        attempt waits a tenth of the timeout."""
        reply = self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=self._claim_from, count=count
        )
        cursor, claimed = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        self._claim_from = cursor
        if cursor == "0-0":
            self._next_claim = time.monotonic() + self.claim_idle_ms / 10_000
        if deleted:  # deleted from the stream while pending; XAUTOCLAIM dropped them from the group
            log.warning(
                "%s: %d claimable entry(ies) were deleted from the stream", self.consumer, len(deleted)
            )
        batch = [Entry(i, f or {}) for i, f in claimed]
        if not batch:
            return []
        log.warning("%s: claimed %d entry(ies) pending with other consumers", self.consumer, len(batch))
        counts = self._deliveries([e.id for e in batch])
        return sorted((Entry(e.id, e.fields, counts.get(e.id, 1)) for e in batch), key=lambda e: id_key(e.id))

    def _deliveries(self, ids: list[str]) -> dict[str, int]:
        keys = sorted(ids, key=id_key)
        return {
            str(p["message_id"]): int(p["times_delivered"])
            for p in self.client.xpending_range(
                self.stream, self.group, keys[0], keys[-1], len(keys) * 4 + 10, self.consumer
            )
        }

    def owned(self, ids: list[str]) -> set[str]:
        import redis

        if not ids:
            return set()
        try:
            return set(ids) & set(self._deliveries(ids))
        except redis.RedisError as exc:
            raise _transient(exc, "reading pending entries") from exc

    def pending_floor(self) -> str | None:
        import redis

        try:
            summary = self.client.xpending(self.stream, self.group)
        except redis.RedisError as exc:
            raise _transient(exc, "reading pending entries") from exc
        return summary["min"] if summary["pending"] else None

    def pending(self) -> int | None:
        try:
            return int(self.client.xpending(self.stream, self.group)["pending"])
        except Exception:  # a figure for the record, never a reason to stop
            return None

    def reset(self) -> None:
        self._own_after = "0"

    def _read_own(self, count: int) -> list[Entry]:
        assert self._own_after is not None
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self._own_after}, count=count)
        batch = _entries(reply)
        if not batch:
            return []
        self._own_after = batch[-1].id
        counts = self._deliveries([e.id for e in batch])
        # an entry deleted from the stream while pending comes back without fields
        return [Entry(e.id, e.fields, counts.get(e.id, 1)) for e in batch]

    def ack(self, ids: list[str]) -> None:
        import redis

        if not ids:
            return
        try:
            self.client.xack(self.stream, self.group, *ids)
        except redis.RedisError as exc:
            raise _transient(exc, "acknowledging") from exc

    def dead_letter(self, letters: list[DeadLetter], processor: str) -> int:
        import redis

        if not letters:
            return 0
        try:
            written = 0
            for start in range(0, len(letters), _DEAD_CHUNK):  # one script call per chunk of letters
                args: list[Any] = []
                for letter in letters[start : start + _DEAD_CHUNK]:
                    fields = _dead_fields(letter, self.stream, processor)
                    args += [letter.entry.id, len(fields) * 2, *(x for kv in fields.items() for x in kv)]
                written += int(
                    self._dead_once(keys=[self.dead_stream, f"{self.dead_stream}:late_ids"], args=args)
                )
            return written
        except redis.RedisError as exc:
            raise _transient(exc, "writing the dead-letter stream") from exc

    def lag(self) -> int | None:
        try:
            for info in self.client.xinfo_groups(self.stream):
                if info["name"] == self.group:
                    lag = info.get("lag")
                    return None if lag is None else int(lag)
        except Exception:  # lag is a figure for the record, never a reason to stop
            return None
        return None


_DEAD_ONCE = """
-- KEYS[1] dead stream, KEYS[2] hash of source ids added under new ids; ARGV: per letter, its source
-- id, the number of field values n, then n field values
local written, i = 0, 1
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local fields = {unpack(ARGV, i + 2, i + 1 + n)}
  i = i + 2 + n
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    local ok = redis.pcall('XADD', KEYS[1], id, unpack(fields))
    if type(ok) == 'table' and ok.err then
      if string.find(ok.err, 'equal or smaller') == nil then return redis.error_reply(ok.err) end
      if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
        redis.call('XADD', KEYS[1], '*', unpack(fields))
        redis.call('HSET', KEYS[2], id, '1')
        written = written + 1
      end
    else
      written = written + 1
    end
  end
end
return written
"""
_DEAD_CHUNK = 500
"""Letters per script call (a call blocks Redis while it runs: keep it short)."""
"""Write a dead letter once, atomically: under the source entry's id when the dead stream's newest is
older; else (another consumer dead-lettered newer entries) under a new id, remembering the source id in
a hash so that a redelivered batch does not write it again."""


def _entries(reply: Any) -> list[Entry]:
    """Entries from an XREADGROUP reply ([[stream, [(id, fields), ...]]]); fields None: deleted."""
    return [Entry(i, f or {}) for _, items in reply or [] for i, f in items]


def _dead_fields(letter: DeadLetter, stream: str, processor: str) -> dict[Any, Any]:
    return {
        "source_stream": stream,
        "source_id": letter.entry.id,
        "processor": processor,
        "reason": letter.reason,
        "rules": json.dumps(letter.rules),
        "values": json.dumps(letter.values, default=str),
        "deliveries": str(letter.entry.deliveries),
    }
