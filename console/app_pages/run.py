"""Runs: the history, and one run in detail — step timeline, records, durations, memory, errors
with retries, quality checks with failing samples, and data samples."""

from __future__ import annotations

import plotly.express as px
import polars as pl
import streamlit as st

from console import auth, data
from console import components as c
from headwater.views.runs import request_retries

STATUSES = ["completed", "completed_with_warnings", "running", "failed", "crashed", "skipped"]

st.title("Runs")

with st.form("run_filters", border=False):
    f1, f2, f3, f4 = st.columns([2, 3, 1, 1])
    names = data.pipeline_table()["name"].to_list()
    pipeline = f1.selectbox("Pipeline", ["(all)", *names], key="runs_pipeline")
    statuses = f2.multiselect("Status", STATUSES, key="runs_status")
    limit = f3.number_input("Show", min_value=10, max_value=5000, value=100, step=50, key="runs_limit")
    f4.form_submit_button("Filter", key="runs_filter")
history = data.run_list(
    pipeline=None if pipeline == "(all)" else pipeline, statuses=tuple(statuses), limit=int(limit)
)

asked = st.query_params.get("id")
wanted = data.find_run(asked) if asked else None
options = history["id"].to_list()
if wanted and wanted not in options:
    options = [wanted, *options]
labels = {
    r["id"]: f"{r['id'][:8]} · {r['pipeline_name']} · {r['status']} · {c.when(r['started_at'])}"
    for r in history.iter_rows(named=True)
}

c.table(
    history.select(
        pl.col("id").str.head(8).alias("run"),
        pl.col("pipeline_name").alias("pipeline"),
        pl.col("execution_type").alias("type"),
        "status",
        pl.col("started_at").alias("started (UTC)"),
        pl.col("duration_seconds").round(2).alias("duration (s)"),
        pl.col("records_processed").alias("read"),
        pl.col("records_loaded").alias("loaded"),
        pl.col("records_quarantined").alias("quarantined"),
        pl.col("quality_score").alias("score"),
        pl.col("retry_count").alias("retries"),
        pl.col("failed_step").alias("failed step"),
        pl.col("error_type").alias("error"),
        pl.col("data_age_seconds").round(0).alias("stale data age (s)"),
        pl.concat_str(pl.lit("run?id="), pl.col("id")).alias("open"),
    ),
    "runs_table",
    default=["run", "pipeline", "status", "started (UTC)", "duration (s)", "loaded", "score", "failed step"],
    height=260,
    column_config={
        "run": st.column_config.TextColumn(width="small"),
        "started (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "duration (s)": st.column_config.NumberColumn(format="%.2f"),
        "score": st.column_config.NumberColumn(format="%.2f"),
        "open": st.column_config.LinkColumn("open", display_text="open", width="small"),
    },
)

if asked and wanted is None:
    if len(asked.strip()) < 36:
        st.error(f"No run, or more than one, has an id starting with {asked!r}.")
        st.stop()

    @auth.live("3s")
    def starting() -> None:
        """A run asked for a moment ago (Run now links here at once): wait for its record."""
        if data.find_run(asked):
            data.refresh()
            st.rerun(scope="app")
        st.info(
            f"Run {asked[:8]} is starting…; this page refreshes every few seconds until it is recorded.",
            icon=":material/hourglass_top:",
        )
        st.caption(
            "A run started here is recorded within seconds; one started through a Prefect deployment "
            "once a worker picks it up. If it never appears, it did not start: see its log under "
            "$HEADWATER_HOME/logs, or the flow run in Prefect."
        )

    starting()
    st.stop()
if not options:
    c.empty("No runs match.")
    st.stop()

# the address chooses the run when it changes (a link followed, an id typed); the picker otherwise
pick = st.session_state.get("run_pick")
if wanted and st.session_state.get("run_asked") != wanted:
    pick = wanted
st.session_state["run_pick"] = pick if pick in options else options[0]
run_id = st.selectbox("Run", options, format_func=lambda i: labels.get(i, i[:8]), key="run_pick")
st.session_state["run_asked"] = run_id
if run_id != st.query_params.get("id"):
    st.query_params["id"] = run_id
detail = data.run_detail(run_id)
if detail is None:
    st.error(f"There is no run {run_id}.")
    st.stop()
run = detail.run

st.header(f"{run['pipeline_name']} · run {run_id[:8]}")
st.caption(
    f"{c.badge(run['status'])} · {run['execution_type']} · started {c.when(run['started_at'])} · "
    f"flow run {run['flow_run_id'] or '—'} · host {run['hostname'] or '—'}"
)
m = st.columns(7)
m[0].metric("Duration", c.seconds(run["duration_seconds"]))
m[1].metric("Read", c.number(run["records_processed"]))
m[2].metric("Loaded", c.number(run["records_loaded"]))
m[3].metric("Inserted / updated", f"{c.number(run['records_inserted'])} / {c.number(run['records_updated'])}")
m[4].metric("Quarantined", c.number(run["records_quarantined"]))
m[5].metric("Quality score", "—" if run["quality_score"] is None else f"{run['quality_score']:.2f}")
m[6].metric("Retries", c.number(run["retry_count"]))
st.caption(
    f"Peak memory {run['peak_memory_mb'] or 0:.0f} MB · CPU {run['cpu_seconds'] or 0:.1f} s"
    + (f" · parameters {c.pairs(run['parameters'])}" if run.get("parameters") else "")
)
if run["status"] in ("failed", "crashed"):
    st.error(
        f"**{run['error_type'] or 'Error'}** at step **{run['failed_step'] or '—'}** "
        f"after {run['retry_count']} retr{'y' if run['retry_count'] == 1 else 'ies'}:  \n"
        f"{run['error_message'] or ''}",
        icon=":material/error:",
    )
for warning in run.get("warnings") or []:
    st.warning(warning)
for used in detail.stale:
    st.error(
        f"**Stale data**: step **{used['step']}** loaded its last good extract of "
        f"{used['extracted_at']} ({used['rows']} rows, {c.seconds(used['age_seconds'])} old) instead of "
        f"source {used['source']}: circuit breaker `{used['breaker']}` open until {used['open_until']}.",
        icon=":material/history:",
    )

st.subheader("Steps")
timeline = detail.timeline
if not timeline.is_empty():
    fig = px.timeline(
        timeline.to_pandas(),
        x_start="start",
        x_end="end",
        y="step",
        color="status",
        color_discrete_map=c.STATUS_COLOR,
        hover_data=["type"],
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_layout(height=80 + 32 * timeline.height, title="Step timeline")
    c.plotly(fig, key="step_timeline", config={"displayModeBar": False})

STEP_SCHEMA = {
    "step": pl.String,
    "type": pl.String,
    "status": pl.String,
    "attempts": pl.Int64,
    "retries": pl.Int64,
    "records in": pl.Int64,
    "records out": pl.Int64,
    "duration (s)": pl.Float64,
    "peak memory (MB)": pl.Float64,
    "error": pl.String,
}
steps = pl.DataFrame(
    [
        (
            s["step_name"],
            s["step_type"],
            s["status"],
            s["attempts"],
            s["retry_count"],
            s["records_in"],
            s["records_out"],
            None if s["duration_seconds"] is None else round(s["duration_seconds"], 3),
            None if s["peak_memory_mb"] is None else round(s["peak_memory_mb"], 1),
            f"{s['error_type'] or 'Error'}: {s['error_message']}" if s["error_message"] else "",
        )
        for s in detail.steps
    ],
    schema=STEP_SCHEMA,
    orient="row",
)
c.table(
    steps,
    "steps_table",
    default=["step", "type", "status", "records in", "records out", "duration (s)", "error"],
    column_config={
        "step": st.column_config.TextColumn(width="medium"),
        "duration (s)": st.column_config.NumberColumn(format="%.3f"),
        "peak memory (MB)": st.column_config.NumberColumn(format="%.1f"),
        "error": st.column_config.TextColumn(width="large"),
    },
)
for step_row in detail.steps:
    note = request_retries(step_row["metrics"])
    if note:
        st.caption(f"**{step_row['step_name']}**: source requests {note}")

st.subheader("Quality checks")
if not detail.checks:
    st.caption("No quality rules were checked in this run.")
else:
    checks = pl.DataFrame(
        [
            (
                k["rule_name"],
                k["suite"],
                k["table_name"],
                k["dimension"],
                k["severity"],
                k["action"],
                k["records_checked"],
                k["records_failed"],
                k["pass_rate"],
                "yes" if k["success"] else "NO",
            )
            for k in detail.checks
        ],
        schema={
            "rule": pl.String,
            "suite": pl.String,
            "table": pl.String,
            "dimension": pl.String,
            "severity": pl.String,
            "action": pl.String,
            "checked": pl.Int64,
            "failed": pl.Int64,
            "pass rate": pl.Float64,
            "passed": pl.String,
        },
        orient="row",
    )
    c.table(
        checks,
        "checks_table",
        default=["rule", "table", "severity", "checked", "failed", "pass rate", "passed"],
        column_config={
            "rule": st.column_config.TextColumn(width="medium"),
            "pass rate": st.column_config.NumberColumn(format="%.2f%%"),
        },
    )
    explanation = detail.score
    st.markdown("**How the quality score is made**")
    st.caption(
        f"{explanation.summary()}. Each rule counts with its weight × its severity "
        "(info 0.5, warning 1, error 2, critical 3); the score is the weighted mean of the pass rates."
    )
    c.table(
        pl.DataFrame(
            [
                (
                    p.rule,
                    p.suite,
                    p.severity,
                    p.weight,
                    p.effective_weight,
                    p.share,
                    p.pass_rate,
                    p.contribution,
                    p.lost,
                )
                for p in explanation.parts
            ],
            schema={
                "rule": pl.String,
                "suite": pl.String,
                "severity": pl.String,
                "weight": pl.Float64,
                "× severity": pl.Float64,
                "share %": pl.Float64,
                "pass %": pl.Float64,
                "points": pl.Float64,
                "points lost": pl.Float64,
            },
            orient="row",
        ),
        "score_table",
        column_config={
            "rule": st.column_config.TextColumn(width="medium"),
            "weight": st.column_config.NumberColumn(format="%.2f"),
            "× severity": st.column_config.NumberColumn(
                format="%.2f", help="weight × severity factor: what the rule counts for"
            ),
            "share %": st.column_config.NumberColumn(format="%.2f%%", help="of all the rules' weight"),
            "pass %": st.column_config.NumberColumn(format="%.2f%%"),
            "points": st.column_config.NumberColumn(format="%.2f", help="share × pass rate"),
            "points lost": st.column_config.NumberColumn(format="%.2f", help="share − points"),
        },
    )
    for k in detail.checks:
        if k["records_failed"]:
            with st.expander(f"{k['severity']} · {k['rule_name']}: {k['records_failed']:,} failing"):
                if k["remediation"]:
                    st.markdown(f"**Hint:** {k['remediation']}")
                if k["sample_failures"]:
                    st.caption("Failing rows (sample, PII masked)")
                    c.table(
                        pl.DataFrame(k["sample_failures"], infer_schema_length=None),
                        f"failing_sample_{k['id']}",
                    )

st.subheader("Data samples")
sampled = [s for s in detail.steps if s["sample_in"] or s["sample_out"]]
if not sampled:
    st.caption("No samples were kept (samples: 0, or no step got that far).")
else:
    step_name = st.selectbox("Step", [s["step_name"] for s in sampled], key="sample_step")
    chosen = next(s for s in sampled if s["step_name"] == step_name)
    left, right = st.columns(2)
    left.caption("In (masked)")
    if chosen["sample_in"]:
        with left:
            c.table(pl.DataFrame(chosen["sample_in"], infer_schema_length=None), "sample_in")
    right.caption("Out (masked)")
    if chosen["sample_out"]:
        with right:
            c.table(pl.DataFrame(chosen["sample_out"], infer_schema_length=None), "sample_out")
    metrics = chosen.get("metrics") or {}
    if metrics:
        st.caption("Step metrics")
        st.json(metrics, expanded=False)
