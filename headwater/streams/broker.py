"""The broker behind a stream processor: read a batch, acknowledge, dead-letter. `StreamBroker` is
the interface (a second broker implements the same calls); `RedisStreamBroker` is Redis Streams
with a consumer group."""

from __future__ import annotations

import json
import logging
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
    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) when missing."""

    def read(self, count: int, block_ms: int) -> list[Entry]:
        """Up to `count` entries, oldest first: this consumer's own unacknowledged entries first
        (after a restart), then new ones, waiting up to `block_ms` for them."""

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
    ) -> None:
        self.client, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.dead_stream, self.start = dead_stream, start
        self._own_after: str | None = "0"  # reading our own pending entries from here; None: new ones

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> RedisStreamBroker:
        import redis

        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=120)
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

        try:
            if self._own_after is not None:
                entries = self._read_own(count)
                if entries:
                    return entries
                self._own_after = None
            reply = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        except redis.RedisError as exc:
            raise _transient(exc, "reading") from exc
        return _entries(reply)

    def _read_own(self, count: int) -> list[Entry]:
        assert self._own_after is not None
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self._own_after}, count=count)
        batch = _entries(reply)
        if not batch:
            return []
        self._own_after = batch[-1].id
        counts = {
            p["message_id"]: int(p["times_delivered"])
            for p in self.client.xpending_range(
                self.stream, self.group, batch[0].id, batch[-1].id, len(batch), self.consumer
            )
        }
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
            pipe = self.client.pipeline(transaction=False)
            for letter in letters:
                pipe.xadd(self.dead_stream, _dead_fields(letter, self.stream, processor), id=letter.entry.id)
            replies = pipe.execute(raise_on_error=False)
            written = 0
            for letter, reply in zip(letters, replies, strict=True):
                if not isinstance(reply, Exception):
                    written += 1
                elif "equal or smaller" not in str(reply):
                    raise reply
                elif not self.client.xrange(self.dead_stream, letter.entry.id, letter.entry.id, count=1):
                    # an older entry than the dead stream's newest, never written (another consumer
                    # dead-lettered newer ones): added under a new id, with source_id to find it by
                    self.client.xadd(self.dead_stream, _dead_fields(letter, self.stream, processor))
                    written += 1
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
