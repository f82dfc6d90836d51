"""Alerts: what is open, acknowledge, resolve and silence; the history with MTTA and MTTR."""

from __future__ import annotations

import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.access import Action
from headwater.alerting.engine import mtta_mttr

ACTIVE = ("open", "acknowledged", "suppressed")

st.title("Alerts")
if data.settings().alerts_dir is None:
    st.info(
        "Alerting is not configured here (HEADWATER_ALERTS is unset): alerts recorded in the store are "
        "shown, "
        "but acknowledging, resolving and silencing need the channel and rule config.",
        icon=":material/info:",
    )
days = st.select_slider("History window (days)", [1, 7, 30, 90, 365], value=30, key="alerts_days")
history = data.alerts(int(days))
active = data.alerts(statuses=ACTIVE)
stats = mtta_mttr(history)

m = st.columns(5)
m[0].metric("Open", sum(1 for a in active if a["status"] == "open"))
m[1].metric("Acknowledged", sum(1 for a in active if a["status"] == "acknowledged"))
m[2].metric("Silenced", sum(1 for a in active if a["status"] == "suppressed"))
m[3].metric(
    "MTTA",
    c.seconds(stats.mtta_seconds),
    help=f"Mean time to acknowledge over {stats.acknowledged} alerts ({days} days)",
)
m[4].metric(
    "MTTR",
    c.seconds(stats.mttr_seconds),
    help=f"Mean time to resolve over {stats.resolved} alerts ({days} days)",
)


def frame(rows: list[dict]) -> pl.DataFrame:  # type: ignore[type-arg]
    return pl.DataFrame(
        [
            {
                "id": a["id"],
                "severity": a["severity"],
                "pipeline": a["pipeline_name"],
                "rule": a["rule_name"],
                "status": a["status"],
                "seen": a["occurrences"],
                "level": a["level"],
                "opened (UTC)": a["opened_at"],
                "last seen (UTC)": a["last_seen_at"],
                "acknowledged by": a["acknowledged_by"],
                "resolved by": a["resolved_by"],
            }
            for a in rows
        ],
        schema_overrides={"acknowledged by": pl.String, "resolved by": pl.String},
    )


st.subheader("Active")
if not active:
    st.success("No open alerts.")
else:
    c.table(frame(active), hide_index=True, width="stretch", key="active_alerts")
    picked = st.selectbox(
        "Alert",
        [a["id"] for a in active],
        format_func=lambda i: next(
            f"#{a['id']} {a['pipeline_name']} · {a['rule_name']} ({a['status']})"
            for a in active
            if a["id"] == i
        ),
        key="alert_pick",
    )
    alert = next(a for a in active if a["id"] == picked)
    details = alert["details"] or {}
    run = details.get("run") or {}
    st.markdown(
        f"**{alert['rule_name']}** on **{alert['pipeline_name']}** — {alert['severity']}, "
        f"seen {alert['occurrences']}×, "
        f"escalation level {alert['level']}, opened {c.when(alert['opened_at'])}"
    )
    if run.get("run_id"):
        st.markdown(f"Last run: [{str(run['run_id'])[:8]}](run?id={run['run_id']}) · {run.get('status', '')}")
    for fired in details.get("fired") or []:
        st.caption(f"• {fired}")
    if run.get("error_message"):
        st.caption(
            f"{run.get('error_type') or 'Error'} at {run.get('failed_step') or '—'}: {run['error_message']}"
        )
    if details.get("hint"):
        st.caption(f"Hint: {details['hint']}")
    sent = data.deliveries(int(picked))
    if sent:
        c.table(
            pl.DataFrame(
                [
                    {
                        "channel": d.channel,
                        "kind": d.kind,
                        "status": d.status,
                        "attempts": d.attempts,
                        "note": d.reason or d.error or "",
                    }
                    for d in sent
                ]
            ),
            hide_index=True,
            width="stretch",
            key="deliveries",
        )
    b1, b2, _ = st.columns([1, 1, 3])
    if b1.button(
        "Acknowledge", key="ack", disabled=alert["status"] == "acknowledged", **c.gate(Action.ACK_ALERT)
    ):
        c.act(
            lambda: data.actions().ack_alert(st.session_state["hw_token"], int(picked)),
            lambda _: f"alert {picked} acknowledged",
        )
    if b2.button("Resolve", key="resolve", **c.gate(Action.RESOLVE_ALERT)):
        c.act(
            lambda: data.actions().resolve_alert(st.session_state["hw_token"], int(picked)),
            lambda n: f"alert {picked} resolved; {n} message(s) sent",
        )

st.subheader("Silences")
for s in data.silences():
    st.markdown(
        f":material/notifications_off: `{c.pairs(s.matchers)}` until {c.when(s.expires_at)} "
        f"by {s.created_by} — {s.reason}"
    )
with st.form("silence", border=True):
    s1, s2, s3 = st.columns(3)
    pipeline = s1.text_input("Pipeline (glob)", value="*", key="silence_pipeline")
    rule = s2.text_input("Rule (glob)", value="*", key="silence_rule")
    severity = s3.selectbox("Severity", ["*", "critical", "warning", "info"], key="silence_severity")
    s4, s5 = st.columns([1, 3])
    hours = s4.number_input(
        "Hours", min_value=0.25, max_value=336.0, value=4.0, step=0.25, key="silence_hours"
    )
    reason = s5.text_input("Reason", key="silence_reason", placeholder="e.g. backfill of flights")
    submitted = st.form_submit_button("Silence", key="silence_submit", **c.gate(Action.SILENCE_ALERT))
if submitted:
    matchers = {
        k: v for k, v in {"pipeline": pipeline, "rule": rule, "severity": severity}.items() if v and v != "*"
    }
    matchers = matchers or {"pipeline": "*"}
    c.act(
        lambda: data.actions().silence(st.session_state["hw_token"], matchers, float(hours), reason),
        lambda i: f"silence {i} on {c.pairs(matchers)} for {hours} h",
    )

st.subheader("History")
if not history:
    st.caption(f"No alerts in the last {days} days.")
else:
    c.table(frame(history), hide_index=True, width="stretch", key="alert_history")
