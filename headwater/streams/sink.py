"""What a stream processor commits for one batch, in ONE warehouse transaction taken under the
group's commit lock: the entry ids the batch covers, its rows (with the anomaly step's z-scores),
the windows it closed, the alert firings (an outbox), and the state of the windows, the anomaly
baselines and the alert rules. The states are read inside that transaction, so consumers of one
group share them and batches apply in commit order; a restart resumes from the states that match the
committed rows.

Writes outside the warehouse — dead letters of late events and rows published to another stream —
are made inside the transaction too, before the commit, and are write-once by identity: a batch
redone after a crash or a rollback writes none of them twice. Alerts are sent after the commit, from
the outbox (headwater/streams/alerts.py), so a crash loses none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from headwater.load.base import load_built
from headwater.load.watermarks import watermarks, write_watermark
from headwater.spec.models import AlertStep, Destination, PublishStep
from headwater.streams.alerts import AlertState, evaluate, write_outbox
from headwater.streams.anomaly import AnomalyState, score
from headwater.streams.broker import DeadLetter, Entry, StreamBroker, id_key
from headwater.streams.plan import Output, StreamPlan
from headwater.streams.publish import publish
from headwater.streams.windowing import StreamWindows, state_key
from headwater.streams.windows import WindowState

if TYPE_CHECKING:
    import redis


@dataclass
class Committed:
    """What one committed batch did beyond its rows."""

    loaded: int = 0
    closed: int = 0
    late: list[DeadLetter] = field(default_factory=list)
    firings: int = 0
    published: int = 0


class _States:
    """The states kept in headwater_watermarks, read under the lock; parsed again only when the
    committed text changed (another consumer committed, or this one at its first batch)."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.cache: dict[str, tuple[str, Any]] = {}
        self.table_seen = False
        self.pending: dict[str, tuple[str, Any]] = {}  # written in the open transaction

    def read(self, conn: sa.Connection, source: str, parse: Callable[[str], Any], empty: Any) -> Any:
        if not self.table_seen:
            if not sa.inspect(conn).has_table(watermarks.name):
                return empty
            self.table_seen = True
        text = conn.execute(
            sa.select(watermarks.c.value).where(
                watermarks.c.pipeline == self.pipeline, watermarks.c.source == source
            )
        ).scalar()
        if text is None:
            return empty
        cached = self.cache.get(source)
        if cached is not None and cached[0] == text:
            return cached[1]
        value = parse(text)
        self.cache[source] = (text, value)
        return value

    def write(self, conn: sa.Connection, source: str, value: Any, text: str, run_id: str) -> None:
        write_watermark(conn, self.pipeline, source, text, run_id, ensure=not self.table_seen)
        self.pending[source] = (text, value)

    def begin(self) -> None:
        self.pending = {}

    def committed(self) -> None:
        self.cache.update(self.pending)


class BatchSink:
    def __init__(
        self,
        plan: StreamPlan,
        warehouse: sa.Engine,
        broker: StreamBroker,
        redis_client: redis.Redis | None = None,
        *,
        outputs: bool = True,
        state_tag: str | None = None,
    ) -> None:
        """`outputs` False: alert and publish steps are not run (a replay). `state_tag`: keep the
        states under keys of their own (a replay from the stream's start, beside the live ones)."""
        self.plan, self.warehouse, self.broker, self.client = plan, warehouse, broker, redis_client
        self.outputs = plan.outputs if outputs else ()
        self.windows = StreamWindows(plan) if plan.window is not None else None
        self.states = _States(plan.name)
        self.known: dict[Any, sa.Table] = {}  # the tables checked for the batches' shapes
        base = f"stream:{plan.source.stream}:{plan.source.group}"
        tag = f":{state_tag}" if state_tag else ""
        self.anomaly_key = f"{base}:anomaly{tag}"
        self.window_key = state_key(plan) + tag
        self.alert_keys = {o.step.name: f"{base}:alerts:{o.step.name}" for o in plan.output_reads(AlertStep)}
        if outputs and plan.output_reads(PublishStep) and redis_client is None:
            raise ValueError(f"{plan.name} publishes to a stream: give the sink a Redis client")

    def commit(
        self,
        events: pl.DataFrame,
        good: pl.DataFrame,
        entries: list[Entry],
        run_id: str,
        guard: Callable[[sa.Connection], None],
    ) -> Committed:
        """One transaction: `guard(conn)` (the group's lock, the superseded check, the ranges), then
        the stateful steps, then the rows. Raises what `guard` raises, with nothing committed."""
        plan = self.plan
        out = Committed()

        def build(conn: sa.Connection) -> list[tuple[pl.DataFrame, Destination]]:
            guard(conn)
            self.states.begin()
            scored = good
            if plan.anomaly is not None and good.height:
                state = self.states.read(conn, self.anomaly_key, AnomalyState.from_json, AnomalyState())
                scored, new = score(plan.anomaly.anomaly, state, good)
                self.states.write(conn, self.anomaly_key, new, new.to_json(), run_id)
            closed = pl.DataFrame()
            if self.windows is not None and plan.window is not None:
                state = self.states.read(conn, self.window_key, WindowState.from_json, WindowState())
                window_input = scored if plan.window.primary_input == _anomaly_name(plan) else good
                windowed = self.windows.process(window_input, entries, state)
                if window_input.height:
                    self.states.write(conn, self.window_key, windowed.state, windowed.state.to_json(), run_id)
                closed, out.late = windowed.closed, windowed.late
                if out.late:  # write-once by the entry's id: a redone batch writes none twice
                    self.broker.dead_letter(sorted(out.late, key=lambda d: id_key(d.entry.id)), plan.name)
            frames = {"events": events, "good": good, "scored": scored, "windows": closed}
            for output in self.outputs:
                self._output(conn, output, frames, run_id, out)
            load_input = scored if plan.load.primary_input == _anomaly_name(plan) else good
            written: list[tuple[pl.DataFrame, Destination]] = [(load_input, plan.load.destination)]
            if closed.height and plan.window_load is not None:
                written.append((closed, plan.window_load.destination))
            out.loaded, out.closed = load_input.height, closed.height
            return written

        load_built(self.warehouse, build, self.known)
        self.states.committed()
        return out

    def state_keys(self) -> list[str]:
        """The headwater_watermarks sources this sink keeps its states under."""
        return [self.anomaly_key, self.window_key, *self.alert_keys.values()]

    def _output(
        self,
        conn: sa.Connection,
        output: Output,
        frames: dict[str, pl.DataFrame],
        run_id: str,
        out: Committed,
    ) -> None:
        frame = frames[output.reads]
        step = output.step
        if isinstance(step, AlertStep):
            key = self.alert_keys[step.name]
            state = self.states.read(conn, key, AlertState.from_json, AlertState())
            time_column = step.time_column or ("window_end" if output.reads == "windows" else None)
            firings, new = evaluate(step.rules, step.key, time_column, self.plan.pii, state, frame)
            if new.holding or state.holding:
                self.states.write(conn, key, new, new.to_json(), run_id)
            write_outbox(conn, self.plan.name, step.name, step.channels, firings)
            out.firings += len(firings)
        else:
            assert self.client is not None
            keys = None
            if output.reads == "windows" and self.plan.window is not None:
                keys = list(self.plan.window.window.keys)
            out.published += publish(self.client, step.stream, frame, keys, step.maxlen)


def _anomaly_name(plan: StreamPlan) -> str | None:
    return plan.anomaly.name if plan.anomaly is not None else None
