"""Event-time windows inside a stream processor: each batch's good rows go through
:func:`headwater.streams.windows.process`; the closed windows, the batch's rows, the window state and
the last entry id are committed in ONE warehouse transaction, so a window is loaded once and a restart
resumes from the state that matches the committed rows. Events the windows refuse (late, no event
time) are dead-lettered with that reason, once each (the dead letter has the entry's id).

The state is a row of ``headwater_watermarks`` (source ``stream:<stream>:<group>:windows``, value the
JSON of :meth:`WindowState.to_json`), beside the processor's last entry id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.load.base import WatermarkUpdate, load_frame
from headwater.load.quarantine import _masked
from headwater.load.watermarks import read_watermark, watermarks, write_watermark
from headwater.redact import PII_COLUMN
from headwater.streams.batch import ENTRY_ID
from headwater.streams.broker import DeadLetter, Entry
from headwater.streams.plan import StreamPlan
from headwater.streams.windows import WindowState, process

_MISSED = ("window_start", "window_end", "watermark")


def state_key(plan: StreamPlan) -> str:
    """The window state's row in headwater_watermarks (pipeline = the spec's name)."""
    return f"stream:{plan.source.stream}:{plan.source.group}:windows"


@dataclass
class BatchWindows:
    """What one batch did to the windows: the windows it closed, its late events as dead letters,
    and the state to commit with it."""

    closed: pl.DataFrame
    late: list[DeadLetter]
    state: WindowState
    base: str | None
    """the committed state's JSON this batch started from (None: no state committed yet)"""


class StreamWindows:
    """A processor's windows: the committed state (read from the warehouse on first use) and the
    step that turns a batch's good rows into closed windows and late events."""

    def __init__(self, plan: StreamPlan, warehouse: sa.Engine) -> None:
        if plan.window is None:
            raise ValueError(f"{plan.name} has no window step")
        self.plan, self.warehouse, self.spec = plan, warehouse, plan.window.window
        self.state: WindowState | None = None
        self.saved: str | None = None

    def committed_state(self) -> WindowState:
        if self.state is None:
            self.saved = read_watermark(self.warehouse, self.plan.name, state_key(self.plan))
            self.state = WindowState.from_json(self.saved) if self.saved else WindowState()
        return self.state

    def process(self, good: pl.DataFrame, entries: list[Entry]) -> BatchWindows:
        """The batch's good rows (arrival order) through the windows; the state is not advanced
        until :meth:`committed` is called after the commit."""
        state = self.committed_state()
        if good.height == 0:  # no events: the watermark does not move, nothing closes
            return BatchWindows(pl.DataFrame(), [], state, self.saved)
        closed, late, new_state = process(self.spec, state, good)
        return BatchWindows(closed, self._dead_letters(late, entries), new_state, self.saved)

    def committed(self, batch: BatchWindows, saved: str) -> None:
        self.state, self.saved = batch.state, saved

    def _dead_letters(self, late: pl.DataFrame, entries: list[Entry]) -> list[DeadLetter]:
        if late.height == 0:
            return []
        by_id = {e.id: e for e in entries}
        once = late.unique(ENTRY_ID, keep="first", maintain_order=True)  # hopping: a row per missed window
        pii = self.plan.pii
        masked = [c for c in once.columns if c not in _MISSED and (c in pii or PII_COLUMN.search(c))]
        values = once.with_columns(_masked(c) for c in masked).drop("reason")
        return [
            DeadLetter(by_id[row[ENTRY_ID]], reason, [], row)
            for row, reason in zip(values.iter_rows(named=True), once["reason"].to_list(), strict=True)
        ]


class WindowStateConflict(PermanentError):
    """The committed window state is not the one the batch started from: another consumer of the
    group committed windows. A spec with a window step runs one consumer per group."""


def commit_batch(
    warehouse: sa.Engine,
    plan: StreamPlan,
    good: pl.DataFrame,
    windows: BatchWindows | None,
    marks: list[WatermarkUpdate],
    run_id: str,
    in_transaction: Callable[[sa.Connection], None] | None = None,
) -> str | None:
    """The batch's rows into the load's table, its closed windows into the window load's table, the
    window state and `marks` into headwater_watermarks, and `in_transaction(conn)`: one transaction.
    The state is written only over the state the batch started from (else WindowStateConflict, and
    nothing is committed). Returns the state's JSON as committed."""
    state_json = windows.state.to_json() if windows is not None else None

    def inside(conn: sa.Connection) -> None:
        if in_transaction is not None:
            in_transaction(conn)  # first: it may take the group's commit lock
        if windows is not None and state_json is not None:
            _swap_state(conn, plan, windows.base, state_json, run_id)

    window_rows = None
    if windows is not None and windows.closed.height and plan.window_load is not None:
        window_rows = (windows.closed, plan.window_load.destination)
    if good.height:
        load_frame(
            warehouse,
            good,
            plan.load.destination,
            pipeline=plan.name,
            run_id=run_id,
            watermarks=marks,
            also=[window_rows] if window_rows else None,
            in_transaction=inside,
        )
    elif window_rows:
        frame, destination = window_rows
        load_frame(
            warehouse,
            frame,
            destination,
            pipeline=plan.name,
            run_id=run_id,
            watermarks=marks,
            in_transaction=inside,
        )
    else:
        with warehouse.begin() as conn:
            for mark in marks:
                write_watermark(conn, plan.name, mark.source, mark.value, run_id)
            inside(conn)
    return state_json


def _swap_state(conn: sa.Connection, plan: StreamPlan, base: str | None, new: str, run_id: str) -> None:
    """Compare and set: replace the state row only if it still holds `base` (None: no row)."""
    watermarks.create(conn, checkfirst=True)
    key = (watermarks.c.pipeline == plan.name) & (watermarks.c.source == state_key(plan))
    values = {"value": new, "value_type": "str", "run_id": run_id, "updated_at": datetime.now(UTC)}
    if base is None:
        if conn.execute(sa.select(watermarks.c.value).where(key)).first() is None:
            conn.execute(sa.insert(watermarks).values(pipeline=plan.name, source=state_key(plan), **values))
            return
    elif conn.execute(
        sa.update(watermarks).where(key & (watermarks.c.value == base)).values(**values)
    ).rowcount:
        return
    raise WindowStateConflict(
        f"{plan.name}: the window state in the warehouse changed since this consumer read it; another "
        f"consumer of group {plan.source.group} commits windows too",
        hint="run one consumer per group for a spec with a window step (window state is not shared)",
    )
