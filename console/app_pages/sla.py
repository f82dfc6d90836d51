"""SLAs: each pipeline's service levels (its spec's `sla:`): attainment per objective over the last
days, the days missed, and what is at risk or missed now (the SLA alerts say the same)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.sla import attainment_frame

st.title("SLAs")
st.caption(
    "Per day in each SLA's time zone: success rate over its window, longest run, freshness of the last "
    "success, and a successful run by the deadline. Attainment: the share of measured days met."
)
days = st.number_input(
    "Days",
    min_value=1,
    max_value=365,
    value=30,
    step=1,
    key="sla_days",
    help="How many days back, today included",
)
report = data.sla_report(int(days))
if not report["pipelines"]:
    c.empty("No pipeline declares an `sla:` yet: add one to its spec (see docs/sla.md).")
    st.stop()

pipelines = report["pipelines"]
at_risk = [
    p for p in pipelines if any(k for k in p["now"] if k not in ("expected_duration_seconds", "deadline_at"))
]
m = st.columns(3)
m[0].metric("Pipelines with an SLA", len(pipelines))
measured = [p["attainment"] for p in pipelines if p["attainment"] is not None]
m[1].metric("Mean attainment", c.percent(sum(measured) / len(measured) if measured else None))
m[2].metric("Breached or at risk now", len(at_risk))

c.table(
    attainment_frame(report).rename(
        {
            "attainment": "attainment (%)",
            "days_met": "days met",
            "days_measured": "days measured",
            "missed_days": "missed days",
        }
    ),
    "sla_table",
    column_config={"attainment (%)": st.column_config.NumberColumn(format="%.2f")},
)

chosen = st.selectbox("Pipeline", [p["pipeline"] for p in pipelines], key="sla_pick")
picked = next(p for p in pipelines if p["pipeline"] == chosen)
expected = picked["now"]["expected_duration_seconds"]
for kind, words in picked["now"].items():
    if kind not in ("expected_duration_seconds", "deadline_at"):
        st.warning(f"{kind.replace('_', ' ')}: {words}", icon=":material/warning:")
st.caption(
    f"{chosen}: {c.percent(picked['attainment'])} of {picked['days_measured']} measured day(s) met every "
    f"objective ({picked['timezone']}); expected run time {c.seconds(expected)}."
)
per_day = pl.DataFrame(picked["per_day"], infer_schema_length=None)
c.table(
    per_day.select([col for col in per_day.columns if col == "day" or col.endswith("_met") or col == "met"]),
    "sla_days_table",
)
