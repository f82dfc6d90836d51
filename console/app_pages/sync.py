"""Sync health: each pipeline of type `sync` with its last success, how stale its data is, its next
run and its failures this week; run one now (audited, as from the Pipelines page)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action

STARTED = "started_syncs"
"""pipeline -> the id of the run this session last started from this page"""

st.title("Sync health")
st.caption(
    "Pipelines of type `sync`: stale when the last success is older than one schedule period plus an "
    "hour; failing when the last run failed."
)
states, problem = data.schedules()
if problem:
    st.warning(f"The Prefect API did not answer ({problem}); next runs are computed from the specs.")
health = data.sync_health(states)
if health.is_empty():
    c.empty("No sync pipelines yet: a spec with `type: sync` appears here once it has run.")
    st.stop()

counts = health["health"].value_counts()
count = dict(zip(counts["health"].to_list(), counts["count"].to_list(), strict=True))
m = st.columns(4)
m[0].metric("Syncs", health.height)
m[1].metric("Healthy", count.get("ok", 0))
m[2].metric("Stale", count.get("stale", 0) + count.get("never", 0))
m[3].metric("Failing", count.get("failing", 0))

c.table(
    health.select(
        "name",
        "health",
        pl.col("last_success_at").alias("last success (UTC)"),
        (pl.col("staleness_seconds") / 3600).round(1).alias("staleness (h)"),
        pl.col("next_run").alias("next run (UTC)"),
        pl.col("failures_7d").alias("failures (7 d)"),
        pl.col("runs_7d").alias("runs (7 d)"),
        pl.col("last_status").alias("last status"),
        pl.col("last_error").alias("last error"),
        "schedule",
        "owner",
    ),
    "sync_table",
    default=[
        "name",
        "health",
        "last success (UTC)",
        "staleness (h)",
        "next run (UTC)",
        "failures (7 d)",
        "runs (7 d)",
        "last status",
    ],
    column_config={
        "last success (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "next run (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)

names = health["name"].to_list()
chosen = st.selectbox("Sync", names, key="sync_pick")
row = health.filter(pl.col("name") == chosen).row(0, named=True)
st.markdown(f"**{chosen}** {c.badge(row['last_status'])} — {row['schedule'] or 'no schedule'}")
if row["last_error"]:
    st.caption(f"Last error: {row['last_error']}")
if st.button("Run now", type="primary", key="sync_run_now", **c.gate(Action.RUN_PIPELINE)):
    ticket = c.act(
        lambda: data.actions().run_pipeline(st.session_state["hw_token"], chosen), lambda t: t.detail
    )
    if ticket is not None:
        st.session_state.setdefault(STARTED, {})[chosen] = ticket.run_id
c.run_link(st.session_state.get(STARTED, {}).get(chosen))
