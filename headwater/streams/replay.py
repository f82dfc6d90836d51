"""Replay: a streaming spec's history, or its dead letters, through the plan again (parse, ops,
rules) into the spec's load.

- :func:`replay_range` reads the source stream's entries between two ids (XRANGE, in chunks) and
  upserts the rows that pass; events that break a rule go through the same write-once dead-letter
  path as the processor's. It refuses an `append` load (replayed rows would be loaded twice). A spec
  with a window or anomaly step is replayed only from the first entry of an untrimmed stream: its
  windows and scores are recomputed over the whole history from a fresh state of their own (the live
  processor's is untouched) and upserted; late events are dead-lettered write-once as live. Alert and
  publish steps are not run again. It reads with XRANGE only: the consumer group
  is neither read nor acknowledged, and headwater_stream_commits is not written.
- :func:`replay_dead` takes dead letters (selected by source id, reason or rule), fetches each one's
  original entry from the source stream and runs it through the current spec: those that pass are
  loaded once, recorded in their own commit log (``stream:<stream>:<group>:replayed``, one range per
  entry, in the load's transaction), so replaying a letter again loads nothing even for an append
  load; after the commit they are marked replayed in the hash ``<dead stream>:replayed``. Letters that
  still fail stay dead; letters whose source entry was trimmed are reported and left."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import polars as pl
import sqlalchemy as sa

from headwater.errors import PermanentError, TransientError
from headwater.load.base import load_frame
from headwater.streams.batch import ENTRY_ID, process
from headwater.streams.broker import Entry, RedisStreamBroker, id_key
from headwater.streams.commits import CommitLog, Superseded
from headwater.streams.plan import StreamPlan

if TYPE_CHECKING:
    import redis

    from headwater.settings import Settings
    from headwater.streams.sink import BatchSink

MAX_SEQ = 2**64 - 1
"""The largest sequence number of an entry id: `<ms>-MAX_SEQ` is the last id of a millisecond."""
CONSUMER = "replay"
"""The consumer name replays record in their commit log (they never join the consumer group)."""
_ID = re.compile(r"^\d+(-\d+)?$")
P = ParamSpec("P")
R = TypeVar("R")


def _redis_transient(work: Callable[P, R]) -> Callable[P, R]:
    """Redis unreachable or failing: a TransientError (what was committed stays; run it again)."""

    @functools.wraps(work)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        import redis

        try:
            return work(*args, **kwargs)
        except redis.RedisError as exc:
            raise TransientError(f"redis: {work.__name__} failed: {exc}") from exc

    return wrapped


def replayed_key(dead_stream: str) -> str:
    """The hash of replayed dead letters: source id -> when it was replayed (ISO-8601, UTC)."""
    return f"{dead_stream}:replayed"


def replay_log_source(plan: StreamPlan) -> str:
    """The dead-letter replay's commit log (a row source of headwater_stream_commits)."""
    return f"stream:{plan.source.stream}:{plan.source.group}:replayed"


def stream_position(text: str, *, end: bool = False) -> str:
    """An entry id from `text`: an entry id (``1733011200000-3``), a bare millisecond, an ISO-8601
    time (its millisecond; without a zone, UTC), or ``-``/``+`` (the stream's first/last entry). A
    millisecond alone as `end` means its last id, so both bounds include that millisecond."""
    text = text.strip()
    if text in ("-", "+"):
        return text
    if _ID.match(text):
        ms, _, seq = text.partition("-")
        if seq:
            return f"{int(ms)}-{int(seq)}"
        return f"{int(ms)}-{MAX_SEQ if end else 0}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PermanentError(
            f"{text!r} is neither a stream entry id nor an ISO-8601 time",
            hint="give an entry id such as 1733011200000-0, or a time such as 2026-12-01T00:00:00Z",
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    return f"{millis}-{MAX_SEQ if end else 0}"


def _refuse_windows(plan: StreamPlan, what: str) -> None:
    """Refuse a spec whose rows depend on state kept across batches (windows, anomaly scores)."""
    if plan.window is not None:
        raise PermanentError(
            f"{plan.name}: {what} is refused: window step {plan.window.name} would need its windows "
            "recomputed, which replay does not do",
            hint=f"replay through a copy of the spec without {plan.window.name} and its load step "
            "(the rows only), or reprocess the stream with a new consumer group",
        )
    anomaly = getattr(plan, "anomaly", None)  # the anomaly step (headwater/streams/anomaly.py)
    if anomaly is not None:
        raise PermanentError(
            f"{plan.name}: {what} is refused: anomaly step {anomaly.name} scores each event against "
            "the events before it, which replay does not recompute",
            hint=f"replay through a copy of the spec without {anomaly.name}, or reprocess the stream "
            "with a new consumer group",
        )


def check_range_replay(plan: StreamPlan, from_start: bool = False, trimmed: bool = False) -> None:
    """Refuse what a range replay cannot do without double-counting (PermanentError, one line). A
    spec with a window or anomaly step is replayed only from the stream's first entry of an untrimmed
    stream (`from_start`, not `trimmed`): its windows and scores are recomputed from a fresh state
    over the whole history, which is exact; from the middle, the state there is unknown."""
    stateful = [s.name for s in (plan.window, plan.anomaly) if s is not None]
    if stateful and not from_start:
        raise PermanentError(
            f"{plan.name}: replay from the middle of the stream is refused: step(s) {', '.join(stateful)} "
            "keep state across batches (windows, scores), which is known only from the stream's start",
            hint="replay from the first entry: --from - (the windows and scores are recomputed over the "
            "whole history and upserted)",
        )
    if stateful and trimmed:
        raise PermanentError(
            f"{plan.name}: replay is refused: the stream {plan.source.stream} was trimmed or had entries "
            f"deleted, so its history is incomplete and step(s) {', '.join(stateful)} would be recomputed "
            "from part of it",
            hint="replay through a copy of the spec without the window and anomaly steps (the rows only)",
        )
    loads = [plan.load] + ([plan.window_load] if plan.window_load is not None else [])
    for load in loads:
        if load.destination.mode != "upsert":
            raise PermanentError(
                f"{plan.name}: replay is refused: load step {load.name} has mode {load.destination.mode}, "
                "so replayed events would be loaded twice",
                hint=f"set mode: upsert with a primary_key (e.g. [{ENTRY_ID}]) on step {load.name}; dead "
                "letters can still be replayed once each with `headwater stream dead NAME --replay`",
            )


def _history(client: redis.Redis, stream: str, first: str) -> tuple[bool, bool]:
    """(whether `first` is at or before the stream's first entry, whether entries were ever removed)."""
    try:
        info = client.xinfo_stream(stream)
    except Exception:  # no such stream: nothing to replay, nothing removed
        return True, False
    head = info.get("first-entry")
    head_id = _text(head[0]) if head else None
    from_start = first == "-" or head_id is None or id_key(first) <= id_key(head_id)
    added = info.get("entries-added")
    trimmed = added is not None and int(added) > int(info.get("length", 0))
    return from_start, trimmed


def _keep_entry_id(plan: StreamPlan, columns: list[str]) -> None:
    if ENTRY_ID not in columns:
        raise PermanentError(
            f"{plan.name}: the ops removed the column {ENTRY_ID}",
            hint=f"keep {ENTRY_ID} (the stream entry id) through the transform steps",
        )


def _dead_writer(plan: StreamPlan, client: redis.Redis) -> RedisStreamBroker:
    """The processor's write-once dead-letter path (no group is created, read or acknowledged)."""
    s = plan.source
    return RedisStreamBroker(client, s.stream, s.group, CONSUMER, s.dead_letter_stream)


# ------------------------------------------------------------------ a range of the stream


@dataclass
class RangeReplay:
    """What a range replay did."""

    name: str
    start: str
    end: str
    events: int = 0
    upserted: int = 0
    dead: int = 0
    """events that break a rule now (dead letters written, or already there)"""
    dead_new: int = 0
    """of those, dead letters newly written (the others were dead-lettered before)"""
    run_id: str = ""
    windows: int = 0
    """windows recomputed and upserted (a spec with a window step, replayed from the start)"""

    def summary(self) -> str:
        windows = f", upserted {self.windows} window(s)" if self.windows else ""
        return (
            f"{self.name}: replayed {self.events} event(s) from {self.start} to {self.end}: upserted "
            f"{self.upserted} row(s){windows}, dead-lettered {self.dead} ({self.dead_new} new)"
        )


@_redis_transient
def replay_range(
    plan: StreamPlan,
    client: redis.Redis,
    warehouse: sa.Engine,
    start: str,
    end: str = "+",
    *,
    chunk: int = 1000,
    run_id: str | None = None,
) -> RangeReplay:
    """The source stream's entries from `start` to `end` (entry ids or times, both included, see
    :func:`stream_position`) through the plan, `chunk` entries at a time; each chunk's rows are
    upserted in one transaction."""
    first, last = stream_position(start), stream_position(end, end=True)
    stateful = plan.window is not None or plan.anomaly is not None
    from_start, trimmed = _history(client, plan.source.stream, first) if stateful else (False, False)
    check_range_replay(plan, from_start, trimmed)
    if first not in ("-", "+") and last not in ("-", "+") and id_key(first) > id_key(last):
        raise PermanentError(
            f"{plan.name}: replay from {first} to {last}: the start is after the end",
            hint="give --from before --to",
        )
    result = RangeReplay(plan.name, first, last, run_id=run_id or str(uuid.uuid4()))
    writer = _dead_writer(plan, client)
    sink = None
    if stateful:  # windows and scores from a fresh state of its own; no alerts, nothing published
        from headwater.streams.sink import BatchSink

        sink = BatchSink(plan, warehouse, writer, None, outputs=False, state_tag=f"replay:{result.run_id}")
    cursor = first
    try:
        while True:
            batch = client.xrange(plan.source.stream, min=cursor, max=last, count=chunk) or []
            if not batch:
                break
            entries = [Entry(_text(i), {_text(k): _text(v) for k, v in (f or {}).items()}) for i, f in batch]
            _replay_chunk(plan, writer, warehouse, entries, result, sink)
            if len(batch) < chunk:
                break
            cursor = f"({entries[-1].id}"
    finally:
        if sink is not None:
            _forget_states(warehouse, plan.name, sink.state_keys())
    return result


def _forget_states(warehouse: sa.Engine, pipeline: str, keys: list[str]) -> None:
    from headwater.load.watermarks import watermarks

    with warehouse.begin() as conn:
        if sa.inspect(conn).has_table(watermarks.name):
            conn.execute(
                sa.delete(watermarks).where(watermarks.c.pipeline == pipeline, watermarks.c.source.in_(keys))
            )


def _replay_chunk(
    plan: StreamPlan,
    writer: RedisStreamBroker,
    warehouse: sa.Engine,
    entries: list[Entry],
    result: RangeReplay,
    sink: BatchSink | None = None,
) -> None:
    processed = process(entries, plan.source, plan.ops, plan.rules, plan.pii)
    good, dead = processed.good, processed.dead
    if good.height:
        _keep_entry_id(plan, good.columns)
    result.dead_new += writer.dead_letter(sorted(dead, key=lambda d: id_key(d.entry.id)), plan.name)
    if sink is not None:
        done = sink.commit(processed.events, good, entries, result.run_id, lambda conn: None)
        result.windows += done.closed
        result.dead += len(done.late)
    elif good.height:
        load_frame(warehouse, good, plan.load.destination, pipeline=plan.name, run_id=result.run_id)
    result.events += len(entries)
    result.upserted += good.height
    result.dead += len(dead)


# ------------------------------------------------------------------ dead letters


@dataclass(frozen=True)
class DeadRecord:
    """One dead letter as listed: its values as written (PII masked), and when it was replayed."""

    id: str
    """the dead letter's own id in the dead-letter stream"""
    source_id: str
    processor: str
    reason: str
    rules: list[str]
    values: str
    deliveries: int | None
    replayed_at: str | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@_redis_transient
def read_dead(
    client: redis.Redis,
    dead_stream: str,
    *,
    reason: str | None = None,
    rule: str | None = None,
    ids: list[str] | None = None,
    chunk: int = 1000,
) -> list[DeadRecord]:
    """The dead letters of `dead_stream`, oldest first, those with `reason`, breaking `rule`, or of
    the source entries `ids` (each filter when given)."""
    replayed = {_text(k): _text(v) for k, v in (client.hgetall(replayed_key(dead_stream)) or {}).items()}
    wanted = set(ids) if ids is not None else None
    found: list[DeadRecord] = []
    cursor = "-"
    while True:
        batch = client.xrange(dead_stream, min=cursor, max="+", count=chunk) or []
        for entry_id, raw in batch:
            f = {_text(k): _text(v) for k, v in (raw or {}).items()}
            letter = DeadRecord(
                _text(entry_id),
                f.get("source_id", ""),
                f.get("processor", ""),
                f.get("reason", ""),
                json.loads(f.get("rules") or "[]"),
                f.get("values", "{}"),
                int(f["deliveries"]) if f.get("deliveries") else None,
                replayed.get(f.get("source_id", "")),
            )
            if reason is not None and letter.reason != reason:
                continue
            if rule is not None and rule not in letter.rules:
                continue
            if wanted is not None and letter.source_id not in wanted:
                continue
            found.append(letter)
        if len(batch) < chunk:
            break
        cursor = f"({_text(batch[-1][0])}"
    return found


@dataclass
class DeadReplay:
    """What a dead-letter replay did, by source entry id."""

    name: str
    selected: int = 0
    loaded: list[str] = field(default_factory=list)
    """now pass the rules: loaded by this replay and marked replayed"""
    already: list[str] = field(default_factory=list)
    """replayed before (marked, or loaded by a replay that stopped before marking them): not loaded again"""
    still_dead: dict[str, list[str]] = field(default_factory=dict)
    """still failing: the rules they break (or the reason, e.g. unparseable); they stay dead"""
    trimmed: list[str] = field(default_factory=list)
    """the source entry is no longer in the stream (trimmed or deleted): the letter is left"""
    run_id: str = ""

    def summary(self) -> str:
        counts = Counter(r for rules in self.still_dead.values() for r in rules)
        why = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items()))
        return (
            f"{self.name}: {self.selected} dead letter(s) selected: {len(self.loaded)} loaded, "
            f"{len(self.already)} already replayed, {len(self.still_dead)} still failing"
            + (f" ({why})" if why else "")
            + f", {len(self.trimmed)} source entr{'y' if len(self.trimmed) == 1 else 'ies'} trimmed"
        )


@_redis_transient
def replay_dead(
    plan: StreamPlan,
    client: redis.Redis,
    warehouse: sa.Engine,
    *,
    ids: list[str] | None = None,
    reason: str | None = None,
    rule: str | None = None,
    run_id: str | None = None,
) -> DeadReplay:
    """The dead letters selected (all when no filter is given) through the current spec: those that
    pass now are loaded once (with the single-entry ranges they cover, in the load's transaction),
    then marked replayed; the others stay dead."""
    _refuse_windows(plan, "dead-letter replay")
    dead_stream = plan.source.dead_letter_stream
    letters = read_dead(client, dead_stream, reason=reason, rule=rule, ids=ids)
    result = DeadReplay(plan.name, run_id=run_id or str(uuid.uuid4()))
    sources = sorted({letter.source_id for letter in letters if letter.source_id}, key=id_key)
    result.selected = len(sources)
    marked = {x.source_id for x in letters if x.replayed_at}
    result.already = [s for s in sources if s in marked]
    todo = [s for s in sources if s not in marked]
    if not todo:
        return result
    pipe = client.pipeline(transaction=False)
    for source_id in todo:
        pipe.xrange(plan.source.stream, min=source_id, max=source_id)
    entries: list[Entry] = []
    for source_id, found in zip(todo, pipe.execute(), strict=True):
        if found:
            entries.append(Entry(source_id, {_text(k): _text(v) for k, v in (found[0][1] or {}).items()}))
        else:
            result.trimmed.append(source_id)
    processed = process(entries, plan.source, plan.ops, plan.rules, plan.pii)
    result.still_dead = {d.entry.id: d.rules or [d.reason] for d in processed.dead}
    good = processed.good
    if good.height:
        _keep_entry_id(plan, good.columns)
        log = CommitLog(warehouse, plan.name, replay_log_source(plan))
        log.ensure()
        passing = [str(i) for i in good[ENTRY_ID].to_list()]
        done = log.covered(passing)
        while True:
            fresh = [i for i in passing if i not in done]
            if not fresh:
                break
            try:
                _load_once(plan, log, warehouse, good, fresh, result.run_id)
                result.loaded = sorted(fresh, key=id_key)
                break
            except Superseded as exc:  # another replay loaded some of them meanwhile
                done |= exc.committed
        result.already = sorted([*result.already, *done], key=id_key)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if passing:
            client.hset(replayed_key(dead_stream), mapping=dict.fromkeys(passing, now))
    return result


def _load_once(
    plan: StreamPlan, log: CommitLog, warehouse: sa.Engine, good: pl.DataFrame, fresh: list[str], run_id: str
) -> None:
    """The rows of `fresh` and their single-entry ranges in one transaction; Superseded (rolled
    back) when another replay committed some of them since they were checked."""
    rows = good.filter(pl.col(ENTRY_ID).is_in(fresh))

    def record(conn: sa.Connection) -> None:
        log.lock(conn)
        committed = log.covered(fresh, conn)
        if committed:
            raise Superseded(committed, set())
        log.record(conn, [(i, i) for i in fresh], CONSUMER, run_id, None)

    load_frame(
        warehouse, rows, plan.load.destination, pipeline=plan.name, run_id=run_id, in_transaction=record
    )


# ------------------------------------------------------------------ opening a spec's stream


@dataclass
class StreamTarget:
    """A streaming spec's plan, its Redis and its warehouse, for a replay."""

    plan: StreamPlan
    client: redis.Redis
    warehouse: sa.Engine

    def close(self) -> None:
        self.client.close()


def open_target(name: str, settings: Settings, pipelines_dir: str | None = None) -> StreamTarget:
    """The streaming spec `name` (from `pipelines_dir`, default the settings') and its connections."""
    from pathlib import Path

    import redis

    from headwater.connections import Connections
    from headwater.spec.loader import find_pipeline

    loaded = find_pipeline(Path(pipelines_dir or settings.pipelines_dir), name)
    if loaded.spec.type != "streaming":
        raise PermanentError(
            f"{name} is a {loaded.spec.type} pipeline, not a stream processor",
            hint=f"replay its quarantine with: headwater quarantine replay --pipeline {name}",
        )
    plan = StreamPlan.of(loaded)
    url = plan.source.url or settings.redis_url
    if not url:
        raise PermanentError(
            "no Redis to read the stream from",
            hint="set HEADWATER_REDIS_URL (e.g. redis://127.0.0.1:6379/0) or give the source a url",
        )
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=60, socket_connect_timeout=5)
    warehouse = Connections(settings.warehouse_url).engine(loaded.spec.warehouse_of(plan.load))
    return StreamTarget(plan, client, warehouse)
