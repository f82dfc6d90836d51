"""Quality: score trends by pipeline, table and dimension; the rules that fail most; quality by
source; recommendations; and the quarantine, with replay."""

from __future__ import annotations

import json

import plotly.express as px
import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action
from headwater.views import quality

REPLAYED = "replayed_runs"
"""pipeline -> the id of the replay this session last started, where the orchestrator chose it"""

st.title("Quality")
with st.form("quality_filters", border=False):
    f1, f2, f3 = st.columns([2, 2, 1])
    names = data.pipeline_table()["name"].to_list()
    picked = f1.selectbox("Pipeline", ["(all)", *names], key="quality_pipeline")
    days = f2.select_slider("Window (days)", [1, 7, 14, 30, 90, 365], value=30, key="quality_days")
    f3.form_submit_button("Apply", key="quality_apply")
pipeline = None if picked == "(all)" else picked

section = st.radio(
    "Section",
    ["Trends", "Top issues", "By source", "Recommendations", "Quarantine"],
    horizontal=True,
    key="quality_section",
    label_visibility="collapsed",
)
checks = data.checks(int(days), pipeline)


def trend(frame: pl.DataFrame, y: str, colour: str, title: str, y_title: str, key: str) -> None:
    """A daily line per `colour` value over the whole window."""
    fig = px.line(frame.to_pandas(), x="day", y=y, color=colour, markers=True, title=title)
    fig.update_yaxes(title=y_title)
    c.day_axis(fig, int(days))
    c.plotly(fig, key=key)


if section == "Trends":
    scores = data.score_trend(int(days), pipeline)
    if scores.is_empty():
        c.empty("No scored runs in this window.")
    else:
        trend(
            scores,
            "score",
            "pipeline_name",
            "Run quality score by pipeline",
            "mean score (0–100)",
            "trend_pipeline",
        )
    if checks.is_empty():
        c.empty("No quality checks ran in this window.")
    else:
        left, right = st.columns(2)
        for column, by, title in ((left, "table_name", "table"), (right, "dimension", "dimension")):
            with column:
                trend(
                    quality.trend_by(checks, by),
                    "pass_rate",
                    by,
                    f"Pass rate by {title}",
                    "records passing (%)",
                    f"trend_{title}",
                )
        st.markdown("**Latest run, by dimension**")
        latest = quality.latest_by(checks, "dimension")
        c.table(
            latest.rename({"pass_rate": "pass rate"}),
            "latest_dimension",
            column_config={
                "pass rate": st.column_config.ProgressColumn(min_value=0, max_value=100, format="%.2f%%")
            },
        )

elif section == "Top issues":
    issues = quality.top_issues(checks, limit=20)
    if issues.is_empty():
        c.empty("No rule failed in this window.")
    else:
        c.table(
            issues.select(
                pl.col("rule_name").alias("rule"),
                pl.col("pipeline_name").alias("pipeline"),
                pl.col("table_name").alias("table"),
                "dimension",
                "severity",
                "action",
                pl.concat_str(pl.col("runs_failing"), pl.lit(" of "), pl.col("runs_checked")).alias(
                    "runs failing"
                ),
                pl.col("records_failed").alias("records failed"),
                pl.col("last_pass_rate").alias("last pass rate"),
                "remediation",
            ),
            "top_issues",
            default=[
                "rule",
                "pipeline",
                "table",
                "severity",
                "runs failing",
                "records failed",
                "last pass rate",
                "remediation",
            ],
            column_config={
                "rule": st.column_config.TextColumn(width="medium"),
                "last pass rate": st.column_config.NumberColumn(format="%.2f%%"),
                "remediation": st.column_config.TextColumn(width="large"),
            },
        )

elif section == "By source":
    sources = data.by_source(int(days), pipeline)
    if sources.is_empty():
        c.empty("No quality checks ran in this window.")
    else:
        st.caption(
            "Each check counts for the source tables its columns come from (column lineage); "
            "a column made inside the pipeline counts for the pipeline."
        )
        c.table(
            sources.rename(
                {
                    "source_dataset": "source",
                    "source_table": "table",
                    "records_checked": "records checked",
                    "records_failed": "records failed",
                    "pass_rate": "pass rate",
                }
            ),
            "by_source",
            column_config={
                "pass rate": st.column_config.ProgressColumn(min_value=0, max_value=100, format="%.2f%%")
            },
        )
        fig = px.bar(
            sources.to_pandas(),
            x="source_table",
            y="records_failed",
            color="source_dataset",
            title="Failing records by source",
        )
        c.plotly(fig, key="by_source_chart")

elif section == "Recommendations":
    recs = data.recommendations(int(days), pipeline)
    if not recs:
        st.success("Nothing to recommend: every rule passes and every pipeline is checked.")
    for rec in recs:
        with st.container(border=True):
            st.markdown(f"{c.badge(rec.priority)} **{rec.title}** — `{rec.pipeline}`")
            if rec.detail:
                st.caption(rec.detail)
            st.markdown(f"→ {rec.action}")

else:
    waiting = data.quarantine_overview()
    if pipeline:
        waiting = waiting.filter(pl.col("pipeline") == pipeline)
    c.table(
        waiting.rename({"waiting": "waiting rows", "replayed": "replayed rows"}),
        "quarantine_overview",
        column_config={"table": st.column_config.TextColumn(width="medium")},
    )
    targets = [f"{p} → {t}" for p, t in waiting.select("pipeline", "table").iter_rows()]
    if not targets:
        c.empty("No destination tables.")
        st.stop()
    with_rows = [f"{p} → {t}" for p, t, n in waiting.select("pipeline", "table", "waiting").iter_rows() if n]
    target = st.selectbox(
        "Table",
        targets,
        index=targets.index(with_rows[0]) if with_rows else 0,
        key="quarantine_target",
    )
    q_pipeline, q_table = target.split(" → ")
    counts = data.quarantine_counts(q_pipeline, q_table)
    rules = sorted({r for text in counts["rules"].to_list() for r in json.loads(text)})
    g1, g2, g3 = st.columns([2, 2, 1])
    status = g1.selectbox("Status", ["quarantined", "replayed", "(any)"], key="quarantine_status")
    rule = g2.selectbox("Rule", ["(any)", *rules], key="quarantine_rule")
    page = g3.number_input("Page", min_value=1, value=1, step=1, key="quarantine_page")
    if not counts.is_empty():
        st.markdown("**Rows by the rules they broke**")
        c.table(
            counts.with_columns(c.json_text("rules")),
            "quarantine_counts",
            column_config={"rules": st.column_config.TextColumn("rules broken", width="large")},
        )
    rows = data.quarantine_rows(
        q_pipeline,
        q_table,
        None if status == "(any)" else status,
        None if rule == "(any)" else rule,
        limit=100,
        offset=(int(page) - 1) * 100,
    )
    st.markdown(f"**Rows** (page {int(page)}, 100 a page; values masked as in run records)")
    c.table(
        rows.with_columns(
            c.json_text("rules"),
            c.json_text("masked_values"),
            pl.col("run_id").str.head(8),
            pl.col("replay_run_id").str.head(8),
        ),
        "quarantine_rows",
        default=["id", "status", "rules", "masked_values", "run_id", "quarantined_at"],
        column_config={
            "rules": st.column_config.TextColumn("rules broken", width="medium"),
            "masked_values": st.column_config.TextColumn("values (masked)", width="large"),
            "run_id": st.column_config.TextColumn("run", width="small"),
            "quarantined_at": st.column_config.DatetimeColumn(
                "quarantined (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "replay_run_id": st.column_config.TextColumn("replay run", width="small"),
        },
    )
    st.caption(
        "Replay runs the quarantined rows through the validate step again with the lookups as they are now; "
        "rows that pass load once, the rest stay quarantined."
    )
    if st.button(
        f"Replay quarantine of {q_pipeline}", key="replay", type="primary", **c.gate(Action.REPLAY_QUARANTINE)
    ):
        ticket = c.act(
            lambda: data.actions().replay_quarantine(st.session_state["hw_token"], q_pipeline),
            lambda t: t.detail,
        )
        if ticket is not None:
            st.session_state.setdefault(REPLAYED, {})[q_pipeline] = ticket.run_id
            if ticket.run_id is None:
                st.caption("The replay's run appears in Runs as soon as its process records it.")
    c.run_link(st.session_state.get(REPLAYED, {}).get(q_pipeline))
