"""Event-time windows inside a stream processor: each batch's good rows go through
:func:`headwater.streams.windows.process`; the closed windows, the batch's rows, the window state and
the entry ids are committed in ONE warehouse transaction (headwater/streams/sink.py), so a window is
loaded once and a restart resumes from the state that matches the committed rows. Events the windows
refuse (late, no event time) are dead-lettered with that reason, once each (the dead letter has the
entry's id).

The state is a row of ``headwater_watermarks`` (source ``stream:<stream>:<group>:windows``, value the
JSON of :meth:`WindowState.to_json`), beside the processor's last entry id."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from headwater.load.quarantine import _masked
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


class StreamWindows:
    """A processor's windows: the step that turns a batch's good rows into closed windows and late
    events, from the state committed before it (read under the group's commit lock, so several
    consumers of one group share one window state: batches are applied in commit order)."""

    def __init__(self, plan: StreamPlan) -> None:
        if plan.window is None:
            raise ValueError(f"{plan.name} has no window step")
        self.plan, self.spec = plan, plan.window.window

    def process(self, good: pl.DataFrame, entries: list[Entry], state: WindowState) -> BatchWindows:
        """The batch's good rows (arrival order) through the windows from `state`."""
        if good.height == 0:  # no events: the watermark does not move, nothing closes
            return BatchWindows(pl.DataFrame(), [], state)
        closed, late, new_state = process(self.spec, state, good)
        return BatchWindows(closed, self._dead_letters(late, entries), new_state)

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
