"""Streams: each stream processor with its health, lag and throughput; one processor's per-minute
throughput and lag; its dead letters (values as written, PII masked), with replay of the chosen ones
(engineers and admins)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action

st.title("Streams")
st.caption(
    "Stream processors (`headwater stream run`): stalled when entries wait and no batch came for a "
    "minute; lagging when the lag is over 1,000 entries and over 30 s of throughput."
)
table = data.stream_processors()
if table.is_empty():
    c.empty("No stream processors yet: one appears here when `headwater stream run NAME` starts.")
    st.stop()

counts = dict(table["health"].value_counts().iter_rows())
m = st.columns(4)
m[0].metric("Processors", table.height)
m[1].metric("Healthy", counts.get("ok", 0))
m[2].metric("Lagging or stalled", counts.get("lagging", 0) + counts.get("stalled", 0))
m[3].metric("Failed", counts.get("failed", 0))

c.table(
    table.select(
        "name",
        "health",
        "status",
        pl.col("throughput").round(1).alias("events/s"),
        "lag",
        "pending",
        pl.col("events_read").alias("read"),
        pl.col("events_loaded").alias("loaded"),
        pl.col("events_dead").alias("dead-lettered"),
        pl.col("last_id").alias("last id"),
        pl.col("last_batch_at").alias("last batch (UTC)"),
        pl.col("started_at").alias("started (UTC)"),
        "stream",
        "consumer",
        "error",
    ),
    "streams_table",
    default=[
        "name",
        "health",
        "events/s",
        "lag",
        "pending",
        "read",
        "loaded",
        "dead-lettered",
        "last id",
        "last batch (UTC)",
    ],
    column_config={
        "last batch (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "started (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    },
)

chosen = st.selectbox("Processor", table["name"].to_list(), key="streams_pick")
row = table.filter(pl.col("name") == chosen).row(0, named=True)
st.markdown(f"**{chosen}** {c.badge(row['health'])} — stream `{row['stream']}`, group `{row['group_name']}`")
st.markdown(
    f"Since it started: **{row['events_read'] or 0:,}** events read, **{row['events_loaded'] or 0:,}** "
    f"loaded, **{row['events_dead'] or 0:,}** dead-lettered; last id `{row['last_id'] or '—'}`"
)
if row["error"]:
    st.caption(f"Error: {row['error']}")

minutes = st.select_slider("History", [15, 60, 360, 1440], value=60, key="streams_minutes")
history = data.stream_history(chosen, minutes)
if history.is_empty():
    c.empty(f"No minutes recorded for {chosen} in the last {minutes} minutes.")
else:
    left, right = st.columns(2)
    with left:
        fig = go.Figure(go.Scatter(x=history["minute"], y=history["throughput"], mode="lines+markers"))
        fig.update_layout(title="Throughput (events/s)", height=280)
        c.plotly(fig, key="streams_throughput", config={"displayModeBar": False})
    with right:
        fig = go.Figure(
            [
                go.Scatter(x=history["minute"], y=history["lag"], name="lag", mode="lines+markers"),
                go.Scatter(x=history["minute"], y=history["pending"], name="pending", mode="lines+markers"),
            ]
        )
        fig.update_layout(title="Lag and pending (entries)", height=280)
        c.plotly(fig, key="streams_lag", config={"displayModeBar": False})
    c.table(
        history.select(
            pl.col("minute").alias("minute (UTC)"),
            pl.col("events_read").alias("read"),
            pl.col("events_loaded").alias("loaded"),
            pl.col("events_dead").alias("dead-lettered"),
            pl.col("throughput").round(1).alias("events/s"),
            "lag",
            "pending",
            "errors",
            pl.col("latency_p50_ms").round(1).alias("p50 latency (ms)"),
            pl.col("latency_p99_ms").round(1).alias("p99 latency (ms)"),
            pl.col("cpu_seconds").round(2).alias("CPU (s)"),
            (pl.col("rss_bytes") / 2**20).round(1).alias("RSS (MiB)"),
        ).reverse(),
        "streams_history",
        column_config={"minute (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )

st.subheader("Dead letters")
count = int(st.number_input("Newest", 1, 1000, 50, key="streams_dead_count"))
found = data.dead_letters(row["stream"], count)
if found is None:
    c.empty("Set HEADWATER_REDIS_URL to browse the dead-letter stream.")
else:
    letters, total = found
    st.caption(f"`{row['stream']}:dead` holds {total} dead letter(s); values as written, PII masked.")
    if letters.is_empty():
        c.empty("No dead letters.")
    else:
        c.table(
            letters.select(
                pl.col("source_id").alias("entry id"),
                "reason",
                pl.col("rules").alias("rules broken"),
                pl.col("values").alias("values (masked)"),
                "deliveries",
                pl.col("replayed_at").alias("replayed (UTC)"),
            ),
            "streams_dead",
        )
        st.caption(
            "Replay runs the chosen letters' source entries through the spec as it is now: those that "
            "pass load once and are marked replayed, the others stay dead (`headwater stream dead "
            f"{chosen} --replay` does the same)."
        )
        waiting = letters.filter(pl.col("replayed_at").is_null())["source_id"].drop_nulls().to_list()
        picked = st.multiselect("Dead letters to replay", waiting, key="streams_replay_ids")
        if st.button(
            "Replay selected dead letters",
            key="streams_replay",
            type="primary",
            **c.gate(Action.REPLAY_DEAD_LETTERS),
        ):
            c.act(
                lambda: data.actions().replay_dead_letters(
                    st.session_state["hw_token"], chosen, list(picked), data.settings()
                ),
                lambda result: result.summary(),
            )
