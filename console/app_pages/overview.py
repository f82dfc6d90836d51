"""Overview: is the data trustworthy right now?"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from console import auth, data
from console import components as c

st.title("Overview")
o = data.overview_now()

cols = st.columns(6)
cols[0].metric("Pipelines", o.total_pipelines, border=True)
cols[1].metric("Running now", o.running_now, border=True)
delta = (
    None
    if o.success_rate_7d is None or o.success_rate_prev_7d is None
    else round(o.success_rate_7d - o.success_rate_prev_7d, 1)
)
cols[2].metric(
    "Success (7 d)",
    c.percent(o.success_rate_7d),
    delta=None if delta is None else f"{delta:+.1f} pts",
    help=f"Finished runs in the last 7 days that completed ({o.runs_7d} runs); delta: the 7 days before.",
    border=True,
)
cols[3].metric(
    "Failed (24 h)",
    o.failed_24h,
    help="Runs started in the last 24 hours that failed or crashed.",
    border=True,
)
qdelta = (
    None
    if o.quality_score is None or o.quality_score_week_ago is None
    else round(o.quality_score - o.quality_score_week_ago, 2)
)
cols[4].metric(
    "Quality score",
    "—" if o.quality_score is None else f"{o.quality_score:.1f}",
    delta=None if qdelta is None else f"{qdelta:+.2f}",
    help="Mean of each pipeline's latest 0–100 quality score. Delta: against a week ago.",
    border=True,
)
cols[5].metric(
    "Open alerts",
    o.open_alerts,
    help=f"{o.acknowledged_alerts} acknowledged, {o.silenced_alerts} silenced besides.",
    border=True,
)

left, right = st.columns([3, 2])
with left:
    st.subheader("Quality trend (30 days)")
    if o.quality_trend.is_empty():
        c.empty("No run has a quality score yet: add a suite to a validate step.")
    else:
        t = o.quality_trend
        fig = go.Figure(
            go.Scatter(
                x=t["day"].to_list(),
                y=t["score"].to_list(),
                mode="lines+markers",
                line={"color": "#0b6e99"},
                customdata=t["runs"].to_list(),
                hovertemplate="%{x}<br>score %{y:.2f} (%{customdata} runs)<extra></extra>",
            )
        )
        fig.update_yaxes(title="mean run score", range=[max(0, min(t["score"].min() or 0, 100) - 5), 100.5])  # type: ignore[operator]
        c.day_axis(fig, 30)
        c.plotly(fig, key="quality_trend", config={"displayModeBar": False})


@auth.live("30s")
def health_panel() -> None:
    st.subheader("Health")
    for check in data.health_now():
        latency = f" · {check.latency_ms:.0f} ms" if check.latency_ms is not None else ""
        st.markdown(
            f"{c.HEALTH_ICON[check.status]} **{check.component}** — "
            f"{check.status.replace('_', ' ')}{latency}  \n"
            f"<small>{check.target or ''} {check.detail}</small>",
            unsafe_allow_html=True,
        )


@auth.live("30s")
def breakers_panel() -> None:
    st.subheader("Circuit breakers")
    open_now = data.open_breakers_now()
    if not open_now:
        st.caption("All breakers closed: every source and alert channel is called.")
        return
    for b in open_now:
        state = "half-open (a probe is let through)" if b["state"] == "half_open" else "open"
        st.markdown(
            f":material/power_off: **{b['key']}** — {state} since {b['opened_at']}, until "
            f"{b['open_until']}  \n<small>{b['recent_failures']} failure(s); last: "
            f"{b['last_error'] or '—'}</small>",
            unsafe_allow_html=True,
        )


with right:
    health_panel()
    breakers_panel()


@auth.live("10s")
def running_panel() -> None:
    st.subheader("Running now")
    running = data.running()
    if running.is_empty():
        st.caption("Nothing is running.")
        return
    now = data.now()
    c.table(
        running.select(
            pl.col("pipeline_name").alias("pipeline"),
            pl.col("id").str.head(8).alias("run"),
            pl.col("execution_type").alias("type"),
            pl.col("started_at").alias("started (UTC)"),
            (pl.lit(now) - pl.col("started_at")).dt.total_seconds().alias("running for (s)"),
        ),
        hide_index=True,
        width="stretch",
        key="running_table",
    )


running_panel()

st.subheader("Recent failures")
failures = data.run_list(statuses=("failed", "crashed"), days=7, limit=10)
if failures.is_empty():
    st.caption("No failed or crashed runs in the last 7 days.")
else:
    c.table(
        failures.select(
            pl.col("id").str.head(8).alias("run"),
            pl.col("pipeline_name").alias("pipeline"),
            pl.col("status"),
            pl.col("started_at").alias("started (UTC)"),
            pl.col("failed_step").alias("failed step"),
            pl.col("error_type").alias("error"),
            pl.concat_str(pl.lit("run?id="), pl.col("id")).alias("detail"),
        ),
        hide_index=True,
        width="stretch",
        key="failures_table",
        column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")},
    )
