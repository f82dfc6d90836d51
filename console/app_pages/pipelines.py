"""Pipelines: each with its last run, schedule, success rate and duration; run one now (with its
parameters), pause or resume its schedule."""

from __future__ import annotations

from datetime import date
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action

STARTED = "started_runs"
"""pipeline -> the id of the run this session last started (the link stays until another)"""

st.title("Pipelines")
table = data.pipeline_table()
if table.is_empty():
    c.empty("No pipelines yet: run one (`headwater run NAME`) and it appears here.")
    st.stop()

states, problem = data.schedules()
if problem:
    st.warning(f"The Prefect API did not answer ({problem}); schedules are shown as the specs declare them.")
schedule_frame = pl.DataFrame(
    [
        (k, v.schedule, v.next_run, "—" if v.paused is None else ("paused" if v.paused else "active"))
        for k, v in states.items()
    ],
    schema={
        "name": pl.String,
        "schedule": pl.String,
        "next run (UTC)": pl.Datetime("us", "UTC"),
        "state": pl.String,
    },
    orient="row",
)
view = table.join(schedule_frame, on="name", how="left")
c.table(
    view.select(
        "name",
        pl.col("pipeline_type").alias("type"),
        "tags",
        "owner",
        "schedule",
        "state",
        "next run (UTC)",
        pl.col("last_status").alias("last status"),
        pl.col("last_started_at").alias("last run (UTC)"),
        pl.col("runs").alias("runs (30 d)"),
        pl.col("success_rate").alias("success rate"),
        pl.col("mean_duration_seconds").alias("mean duration (s)"),
    ),
    "pipelines_table",
    default=[
        "name",
        "type",
        "schedule",
        "state",
        "next run (UTC)",
        "last status",
        "last run (UTC)",
        "runs (30 d)",
        "success rate",
        "mean duration (s)",
    ],
    column_config={
        "name": st.column_config.TextColumn(width="medium"),
        "schedule": st.column_config.TextColumn(width="medium"),
        "next run (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "last run (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "success rate": st.column_config.ProgressColumn(
            "success rate", min_value=0, max_value=100, format="%.1f%%"
        ),
        "mean duration (s)": st.column_config.NumberColumn(format="%.2f"),
    },
)

names = table["name"].to_list()
chosen = st.selectbox("Pipeline", names, key="pipeline_pick")
row = table.filter(pl.col("name") == chosen).row(0, named=True)
state = states.get(chosen)
st.subheader(chosen)
if row["description"]:
    st.caption(row["description"])
m = st.columns(5)
m[0].metric("Last run", c.ago(row["last_started_at"]), help=c.when(row["last_started_at"]))
m[0].markdown(c.badge(row["last_status"]))
m[1].metric(
    "Next run",
    c.ago(state.next_run) if state and state.next_run else "—",
    help=state.schedule if state else None,
)
m[2].metric("Success rate (30 d)", c.percent(row["success_rate"]))
m[3].metric("Mean duration", c.seconds(row["mean_duration_seconds"]))
m[4].metric("Runs (30 d)", row["runs"])

detail = data.pipeline_detail(chosen)
left, right = st.columns(2)
left.markdown("**Sources**")
with left:
    c.table(detail["sources"], "sources_table")
right.markdown("**Destinations**")
with right:
    c.table(detail["destinations"], "destinations_table")

history = data.run_list(pipeline=chosen, limit=60).sort("started_at")
if not history.is_empty():
    labels = history.select(
        pl.col("started_at").dt.strftime("%m-%d %H:%M") + " · " + pl.col("id").str.head(4)
    ).to_series()
    fig = go.Figure(
        go.Bar(
            x=labels.to_list(),
            y=history["duration_seconds"].to_list(),
            marker_color=[c.STATUS_COLOR.get(s, "#9aa5b1") for s in history["status"].to_list()],
            customdata=list(
                zip(history["status"].to_list(), history["id"].str.head(8).to_list(), strict=True)
            ),
            hovertemplate="%{x}<br>%{y:.1f} s · %{customdata[0]} · run %{customdata[1]}<extra></extra>",
        )
    )
    fig.update_layout(title="Recent runs: duration, coloured by status", yaxis_title="seconds", bargap=0.3)
    fig.update_xaxes(type="category", showticklabels=history.height <= 30, tickangle=-45)
    if history.height < 12:  # a few runs: keep the bars narrow
        fig.update_xaxes(range=[-0.5, 11.5])
    c.plotly(fig, key="pipeline_history", config={"displayModeBar": False})


def _widget(name: str, spec: Any) -> Any:
    label = f"{name} ({spec.type})"
    key = f"param_{chosen}_{name}"
    default = spec.default
    if getattr(spec, "choices", None):
        options = list(spec.choices)
        return st.selectbox(
            label,
            options,
            index=options.index(default) if default in options else 0,
            key=key,
            help=spec.description,
        )
    if spec.type == "boolean":
        return st.checkbox(label, value=bool(default), key=key, help=spec.description)
    if spec.type == "integer":
        return st.number_input(label, value=int(default or 0), step=1, key=key, help=spec.description)
    if spec.type == "number":
        return st.number_input(label, value=float(default or 0), key=key, help=spec.description)
    if spec.type == "date":
        value = date.fromisoformat(str(default)) if default else None
        picked = st.date_input(label, value=value, key=key, help=spec.description)
        return picked.isoformat() if isinstance(picked, date) else None
    return st.text_input(label, value="" if default is None else str(default), key=key, help=spec.description)


st.markdown("#### Actions")
run_col, schedule_col = st.columns(2)
with run_col:
    try:
        params = data.pipeline_params(chosen)
    except Exception as exc:  # the spec no longer loads: say so; running it would fail the same way
        params = {}
        st.warning(f"The spec of {chosen} does not load here: {exc}")
    with st.form(f"run_{chosen}", border=True):
        st.markdown("**Run now**")
        values = {name: _widget(name, spec) for name, spec in params.items()}
        if not params:
            st.caption("This pipeline declares no parameters.")
        submitted = st.form_submit_button(
            "Run now", type="primary", key="run_now", **c.gate(Action.RUN_PIPELINE)
        )
    if submitted:
        changed = {k: v for k, v in values.items() if v is not None and v != params[k].default}
        ticket = c.act(
            lambda: data.actions().run_pipeline(st.session_state["hw_token"], chosen, changed),
            lambda t: t.detail,
        )
        if ticket is not None:
            st.session_state.setdefault(STARTED, {})[chosen] = ticket.run_id
    c.run_link(st.session_state.get(STARTED, {}).get(chosen))

with schedule_col:
    st.markdown("**Schedule**")
    if state is None or state.paused is None:
        st.caption(
            "Only a deployed pipeline on a Prefect server has a schedule to pause "
            "(set PREFECT_API_URL, then `prefect deploy --all`)."
        )
    else:
        st.caption(f"{state.schedule} — {'paused' if state.paused else 'active'}")
    pause, resume = st.columns(2)
    if pause.button(
        "Pause",
        key="pause",
        disabled=state is None or state.paused is not False,
        **c.gate(Action.PAUSE_PIPELINE),
    ):
        c.act(
            lambda: data.actions().set_paused(st.session_state["hw_token"], chosen, True),
            lambda _: f"{chosen} paused",
        )
    if resume.button(
        "Resume",
        key="resume",
        disabled=state is None or state.paused is not True,
        **c.gate(Action.RESUME_PIPELINE),
    ):
        c.act(
            lambda: data.actions().set_paused(st.session_state["hw_token"], chosen, False),
            lambda _: f"{chosen} resumed",
        )
