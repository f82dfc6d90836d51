"""Alert rules inside a stream processor (an `alert` step): each rule is a SQL condition on its
input's rows — events, the events that passed the rules, scored events, or closed windows — per
key. A rule without `for` fires at the first row that matches (critical vitals: at once); a rule
with `for: 5m` fires once the condition has held for that long in event time on every row of the
key, and not again until a row of the key does not match (warnings after 5 minutes).

Firings are written to the warehouse table headwater_stream_alerts in the batch's own transaction
(an outbox: a crash after the commit loses no alert), then handed to the alert engine, which opens
one alert instance per rule and key (repeats re-fire the open instance without a message) and
sends it to the channels. The `for` state (since when each key's condition holds) is committed with
the batch, like the window state. Pure Polars here; the engine lives in headwater.alerting."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from headwater.load.quarantine import _masked
from headwater.redact import PII_COLUMN
from headwater.streams.alert_rules import StreamAlertRule
from headwater.transform.expressions import parse_expr

if TYPE_CHECKING:
    from pathlib import Path

    from headwater.alerting import AlertEngine
    from headwater.streams.plan import StreamPlan

log = logging.getLogger(__name__)

_MATCH, _ROW, _KEY = "__hw_match", "__hw_row", "__hw_key"


@dataclass
class AlertState:
    """Per rule, per key (as JSON text): [since µs, fired] while the key's condition holds."""

    holding: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "holding": self.holding}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        return cls(json.loads(text).get("holding", {}))


@dataclass(frozen=True)
class Firing:
    """One rule firing for one key: what the outbox row and the alert instance carry."""

    rule: str
    severity: str
    identity: str
    """the key's raw values joined (never shown: a hash of it names the alert instance)"""
    key: dict[str, Any]
    """the key's values as shown (PII masked)"""
    event_time: datetime | None
    entry_id: str | None
    values: dict[str, Any]
    held_seconds: float | None = None

    @property
    def key_text(self) -> str:
        """What identifies the key: a hash of its raw values (PII never stored in the clear)."""
        return _digest(self.rule, self.identity)

    def text(self) -> str:
        keys = ", ".join(f"{k} {v}" for k, v in self.key.items()) or "all events"
        shown = ", ".join(f"{k} {v}" for k, v in self.values.items() if k not in self.key)
        held = f" for {self.held_seconds:.0f} s" if self.held_seconds is not None else ""
        at = f" at {self.event_time.isoformat()}" if self.event_time is not None else ""
        return f"{self.rule} ({keys}){held}{at}: {shown}"


def evaluate(
    rules: list[StreamAlertRule],
    keys: list[str],
    time_column: str | None,
    pii: list[str],
    state: AlertState,
    frame: pl.DataFrame,
) -> tuple[list[Firing], AlertState]:
    """The firings of one batch (at most one per rule and key) and the state after it. Rows are taken
    per key in event-time order (arrival order without a time column)."""
    if frame.height == 0:
        return [], state
    holding = {r: dict(v) for r, v in state.holding.items()}
    firings: list[Firing] = []
    work = frame.with_row_index(_ROW)
    order = [*keys, time_column, _ROW] if time_column else [*keys, _ROW]
    work = work.sort(order, nulls_last=True)
    for rule in rules:
        shown = [c for c in dict.fromkeys([*keys, *rule.columns(), time_column]) if c and c in work.columns]
        hidden = [c for c in shown if c in pii or PII_COLUMN.search(c)]
        identity = pl.concat_str(
            [pl.col(k).cast(pl.String).fill_null("\x00") for k in keys], separator="\x1f"
        )
        rows_id = pl.lit("") if not keys else identity
        rows = work.with_columns(parse_expr(rule.when).fill_null(False).alias(_MATCH), rows_id.alias(_KEY))
        if rule.hold is None:
            matching = rows.filter(pl.col(_MATCH))
            first = matching.unique(keys, keep="first", maintain_order=True) if keys else matching.head(1)
            for row in first.with_columns(_masked(c) for c in hidden).iter_rows(named=True):
                firings.append(_firing(rule, keys, time_column, row, shown, None))
            continue
        if time_column is None:
            raise ValueError(f"alert rule {rule.name} has `for`, which needs a time column")
        held = holding.setdefault(rule.name, {})
        hold_us = round(rule.hold * 1_000_000)
        extra = ["_entry_id"] if "_entry_id" in rows.columns else []
        picked = rows.select([*shown, *extra, _MATCH, _KEY])
        picked = picked.with_columns(pl.col(time_column).dt.epoch("us").alias("__hw_t"))
        masked_rows = picked.with_columns(_masked(c) for c in hidden)
        hashed = {i: _digest(rule.name, i) for i in masked_rows[_KEY].unique().to_list()}
        for row in masked_rows.iter_rows(named=True):  # only the rule's columns: a narrow frame
            key_text = hashed[row[_KEY]]  # the state never holds a raw key
            t = row["__hw_t"]
            if not row[_MATCH] or t is None:
                if not row[_MATCH]:
                    held.pop(key_text, None)
                continue
            since, fired = held.get(key_text, [t, False])
            since = min(since, t)
            if not fired and t - since >= hold_us:
                firings.append(_firing(rule, keys, time_column, row, shown, (t - since) / 1_000_000))
                fired = True
            held[key_text] = [since, fired]
    return firings, AlertState({r: v for r, v in holding.items() if v})


def _firing(
    rule: StreamAlertRule,
    keys: list[str],
    time_column: str | None,
    row: dict[str, Any],
    shown: list[str],
    held: float | None,
) -> Firing:
    moment = row.get(time_column) if time_column else None
    if isinstance(moment, datetime) and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Firing(
        rule.name,
        rule.severity,
        row[_KEY],
        {k: row[k] for k in keys},
        moment if isinstance(moment, datetime) else None,
        row.get("_entry_id"),
        {c: row[c] for c in shown if c != time_column},
        held,
    )


def _digest(rule: str, identity: str) -> str:
    return hashlib.sha256(f"{rule}\x00{identity}".encode()).hexdigest()[:32]


# ---------------------------------------------------------------- the outbox

OUTBOX = "headwater_stream_alerts"
_meta = sa.MetaData()
outbox = sa.Table(
    OUTBOX,
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("step", sa.String(200), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("key_text", sa.Text, nullable=False),
    sa.Column("fired", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("event_time", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, sent, recorded, failed
    sa.Column("handled_at", sa.DateTime(timezone=True)),
    sa.Column("instance_id", sa.Integer),
    sa.Column("claimed_by", sa.String(200)),
    sa.Index("ix_headwater_stream_alerts_pending", "pipeline", "status"),
)


def write_outbox(
    conn: sa.Connection, pipeline: str, step: str, channels: list[str], firings: list[Firing]
) -> None:
    """In the batch's transaction: one pending row per firing."""
    if not firings:
        return
    outbox.create(conn, checkfirst=True)
    now = datetime.now(UTC)
    conn.execute(
        sa.insert(outbox),
        [
            {
                "pipeline": pipeline,
                "step": step,
                "rule": f.rule,
                "severity": f.severity,
                "key_text": f.key_text,
                "fired": f.text(),
                "details": {
                    "key": json.loads(json.dumps(f.key, default=str)),
                    "values": json.loads(json.dumps(f.values, default=str)),
                    "entry_id": f.entry_id,
                    "event_time": None if f.event_time is None else f.event_time.isoformat(),
                    "held_seconds": f.held_seconds,
                    "channels": channels,
                },
                "event_time": f.event_time,
                "created_at": now,
                "status": "pending",
            }
            for f in firings
        ],
    )


CLAIM_TIMEOUT = timedelta(seconds=60)
"""A firing claimed for sending by a processor that died before marking it is claimed again after this."""


def claim(
    engine: sa.Engine, pipeline: str, consumer: str, own: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    """The pipeline's firings waiting to be sent, now claimed by `consumer` (several consumers of one
    group never send one firing twice). A claim expires after CLAIM_TIMEOUT; `own`: also take back at
    once what this consumer claimed before it restarted (a consumer's name is its own in the group)."""
    now = datetime.now(UTC)
    stale = (outbox.c.status == "sending") & (outbox.c.handled_at < now - CLAIM_TIMEOUT)
    if own:
        stale = stale | ((outbox.c.status == "sending") & (outbox.c.claimed_by == consumer))
    waiting = (outbox.c.pipeline == pipeline) & ((outbox.c.status == "pending") | stale)
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table(OUTBOX):
            return []
        ids = conn.execute(sa.select(outbox.c.id).where(waiting).order_by(outbox.c.id).limit(limit)).scalars()
        wanted = list(ids)
        if not wanted:
            return []
        rows = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(wanted), waiting)
            .values(status="sending", handled_at=now, claimed_by=consumer)
            .returning(*outbox.c)
        )
        return sorted((dict(r._mapping) for r in rows), key=lambda r: r["id"])


def mark(engine: sa.Engine, outcomes: dict[int, tuple[str, int | None]]) -> None:
    """Set each outbox row's status (sent, recorded) and alert instance id."""
    if not outcomes:
        return
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for row_id, (status, instance) in outcomes.items():
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == row_id)
                .values(status=status, handled_at=now, instance_id=instance)
            )


class StreamAlerter:
    """Sends a processor's firings from the outbox through the alert engine (None: no alerts folder
    is configured; the firings are kept in the warehouse, status `recorded`), and resolves the
    alerts no firing has renewed for their step's clear_after."""

    RESOLVE_EVERY = 10.0

    def __init__(
        self,
        warehouse: sa.Engine,
        engine: AlertEngine | None,
        pipeline: str,
        run_id: str,
        clear_after: dict[str, float],
        consumer: str,
    ) -> None:
        self.warehouse, self.engine, self.pipeline, self.run_id = warehouse, engine, pipeline, run_id
        self.consumer = consumer
        self._restarted = True
        self.clear_after = clear_after
        self._resolved_at = 0.0
        self.sent = 0

    def send(self) -> int:
        """Send what waits (after each commit that fired, and at start: a crash loses nothing)."""
        total = 0
        own, self._restarted = self._restarted, False
        while rows := claim(self.warehouse, self.pipeline, self.consumer, own=own):
            own = False
            if self.engine is None:
                mark(self.warehouse, {r["id"]: ("recorded", None) for r in rows})
            else:
                placed, _ = self.engine.process_stream(self.pipeline, self.run_id, rows, datetime.now(UTC))
                mark(self.warehouse, {r["id"]: ("sent", placed.get(r["id"])) for r in rows})
            total += len(rows)
        self.sent += total
        return total

    def tick(self) -> None:
        """Resolve quiet alerts, at most every RESOLVE_EVERY seconds."""
        if self.engine is None or not self.clear_after:
            return
        if time.monotonic() - self._resolved_at < self.RESOLVE_EVERY:
            return
        self._resolved_at = time.monotonic()
        try:
            self.engine.resolve_quiet_stream(self.pipeline, self.clear_after, self.run_id, datetime.now(UTC))
        except Exception as exc:  # a figure of the alerts, never a reason to stop the stream
            log.warning("%s: resolving quiet alerts failed: %s", self.pipeline, exc)


def alerter_for(
    plan: StreamPlan,
    warehouse: sa.Engine,
    store: sa.Engine,
    alerts_dir: Path | None,
    run_id: str,
    consumer: str,
) -> StreamAlerter | None:
    """The processor's alerter when its spec has alert steps (None otherwise). Without an alerts
    folder (HEADWATER_ALERTS) firings are recorded, not sent; a step naming a channel the folder
    lacks is refused before the first batch."""
    from headwater.errors import PermanentError
    from headwater.spec.models import AlertStep

    steps = [o.step for o in plan.output_reads(AlertStep) if isinstance(o.step, AlertStep)]
    if not steps:
        return None
    engine = None
    if alerts_dir is not None:
        from headwater.alerting import engine_for

        engine = engine_for(store, alerts_dir)
        for step in steps:
            unknown = [c for c in step.channels if c not in engine.channels.channels]
            if unknown:
                raise PermanentError(
                    f"{plan.name}: alert step {step.name} names channel(s) {', '.join(unknown)}, which "
                    f"{alerts_dir}/channels.yaml does not define",
                    hint=f"define them there, or use: {', '.join(sorted(engine.channels.channels))}",
                )
    else:
        log.warning("%s: HEADWATER_ALERTS is unset: alert firings are recorded, not sent", plan.name)
    clear_after = {s.name: s.clear_after for s in steps}
    return StreamAlerter(warehouse, engine, plan.name, run_id, clear_after, consumer)
