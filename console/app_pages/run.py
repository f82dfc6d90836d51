"""Runs: the history, and one run in detail — step timeline, records, durations, memory, errors
with retries, quality checks with failing samples, and data samples."""

from __future__ import annotations

import json

import plotly.express as px
import polars as pl
import streamlit as st

from console import components as c
from console import data

STATUSES = ["completed", "completed_with_warnings", "running", "failed", "crashed"]

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

wanted = st.query_params.get("id")
if wanted and len(wanted) < 36:
    wanted = data.find_run(wanted)
options = history["id"].to_list()
if wanted and wanted not in options:
    options = [wanted, *options]
labels = {
    r["id"]: f"{r['id'][:8]} · {r['pipeline_name']} · {r['status']} · {c.when(r['started_at'])}"
    for r in history.iter_rows(named=True)
}

st.dataframe(
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
    ),
    hide_index=True,
    width="stretch",
    height=260,
    key="runs_table",
)
if not options:
    c.empty("No runs match.")
    st.stop()

run_id = st.selectbox(
    "Run",
    options,
    index=options.index(wanted) if wanted in options else 0,
    format_func=lambda i: labels.get(i, i[:8]),
    key="run_pick",
)
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
    f"flow run {run['flow_run_id'] or '—'} · host {run['hostname']}"
)
m = st.columns(7)
m[0].metric("Duration", c.seconds(run["duration_seconds"]))
m[1].metric("Read", c.number(run["records_processed"]))
m[2].metric("Loaded", c.number(run["records_loaded"]))
m[3].metric("Inserted / updated", f"{run['records_inserted']:,} / {run['records_updated']:,}")
m[4].metric("Quarantined", c.number(run["records_quarantined"]))
m[5].metric("Quality score", "—" if run["quality_score"] is None else f"{run['quality_score']:.2f}")
m[6].metric("Retries", run["retry_count"])
st.caption(
    f"Peak memory {run['peak_memory_mb'] or 0:.0f} MB · CPU {run['cpu_seconds'] or 0:.1f} s"
    + (f" · parameters {json.dumps(run['parameters'])}" if run.get("parameters") else "")
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

steps = pl.DataFrame(
    [
        {
            "step": s["step_name"],
            "type": s["step_type"],
            "status": s["status"],
            "attempts": s["attempts"],
            "retries": s["retry_count"],
            "records in": s["records_in"],
            "records out": s["records_out"],
            "duration (s)": None if s["duration_seconds"] is None else round(s["duration_seconds"], 3),
            "peak memory (MB)": None if s["peak_memory_mb"] is None else round(s["peak_memory_mb"], 1),
            "error": ((s["error_type"] or "") + ": " + (s["error_message"] or ""))
            if s["error_message"]
            else "",
        }
        for s in detail.steps
    ]
)
st.dataframe(steps, hide_index=True, width="stretch", key="steps_table")

st.subheader("Quality checks")
if not detail.checks:
    st.caption("No quality suite ran in this run.")
else:
    checks = pl.DataFrame(
        [
            {
                "rule": k["rule_name"],
                "table": k["table_name"],
                "dimension": k["dimension"],
                "severity": k["severity"],
                "action": k["action"],
                "checked": k["records_checked"],
                "failed": k["records_failed"],
                "pass rate": k["pass_rate"],
                "passed": "yes" if k["success"] else "NO",
            }
            for k in detail.checks
        ]
    )
    st.dataframe(
        checks,
        hide_index=True,
        width="stretch",
        key="checks_table",
        column_config={"pass rate": st.column_config.NumberColumn(format="%.2f%%")},
    )
    for k in detail.checks:
        if k["records_failed"]:
            with st.expander(f"{k['severity']} · {k['rule_name']}: {k['records_failed']:,} failing"):
                if k["remediation"]:
                    st.markdown(f"**Hint:** {k['remediation']}")
                if k["sample_failures"]:
                    st.caption("Failing rows (sample, PII masked)")
                    st.dataframe(pl.DataFrame(k["sample_failures"]), hide_index=True, width="stretch")

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
        left.dataframe(
            pl.DataFrame(chosen["sample_in"], infer_schema_length=None), hide_index=True, key="sample_in"
        )
    right.caption("Out (masked)")
    if chosen["sample_out"]:
        right.dataframe(
            pl.DataFrame(chosen["sample_out"], infer_schema_length=None), hide_index=True, key="sample_out"
        )
    metrics = chosen.get("metrics") or {}
    if metrics:
        st.caption("Step metrics")
        st.json(metrics, expanded=False)
