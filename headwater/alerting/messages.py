"""Alert texts: what happened, where, the figures, the links and the first thing to try. Every text
passes through redact() so no secret or PII leaves in a message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from headwater.alerting.facts import RunFacts
from headwater.redact import redact


def run_details(facts: RunFacts, fired: list[str]) -> dict[str, Any]:
    """What an alert instance keeps about the run that opened (or last re-fired) it."""
    return {
        "fired": fired,
        "run": {
            "run_id": facts.run_id,
            "status": facts.status,
            "error_type": facts.error_type,
            "error_message": facts.error_message,
            "failed_step": facts.failed_step,
            "duration_seconds": facts.duration_seconds,
            "quality_score": facts.quality_score,
            "failed_rules": dict(facts.failed_rules),
            "records_loaded": facts.records_loaded,
            "records_quarantined": facts.records_quarantined,
        },
        "links": dict(facts.links),
        "hint": facts.top_hint,
        "owner": facts.owner,
    }


def _figures(run: Mapping[str, Any]) -> list[str]:
    out = []
    if run.get("duration_seconds") is not None:
        out.append(f"duration {run['duration_seconds']:.1f} s")
    out.append(f"rows loaded {run.get('records_loaded', 0)}")
    out.append(f"rows quarantined {run.get('records_quarantined', 0)}")
    if run.get("quality_score") is not None:
        out.append(f"quality score {run['quality_score']:g}")
    return out


def alert_message(
    kind: str, instances: Sequence[Mapping[str, Any]], secrets: Iterable[str] = ()
) -> tuple[str, str]:
    """Title and body for one channel: every instance of one run (or one escalation round) together."""
    first = instances[0]
    if "stream" in first["details"]:
        return _stream_message(kind, instances, secrets)
    pipeline = first["pipeline_name"]
    details = first["details"]
    run = details["run"]
    severity = max((i["severity"] for i in instances), key=("info", "warning", "critical").index)
    headline = "; ".join(f.split(" — ")[0] for i in instances for f in i["details"]["fired"][:1])
    prefix = "ESCALATED " if kind == "escalation" else ""
    title = f"[{prefix}{severity.upper()}] {pipeline}: {headline} (run {run['run_id']})"
    lines = [f"Pipeline {pipeline}, run {run['run_id']} ({run['status']})"]
    if details.get("owner"):
        lines.append(f"Owner: {details['owner']}")
    lines += ["", "What happened:"]
    for inst in instances:
        for fired in inst["details"]["fired"]:
            lines.append(f"- [{inst['severity']}] {inst['rule_name']}: {fired}")
    if run.get("error_type") or run.get("error_message"):
        step = f" in step {run['failed_step']}" if run.get("failed_step") else ""
        lines += ["", f"Error{step}: {run.get('error_type') or ''}: {run.get('error_message') or ''}"]
    lines += ["", "Figures: " + ", ".join(_figures(run))]
    if run.get("failed_rules"):
        failed = ", ".join(f"{rule} ({n} rows)" for rule, n in run["failed_rules"].items())
        lines.append(f"Failed quality rules: {failed}")
    links = details.get("links") or {}
    if links.get("prefect_run_url"):
        lines.append(f"Prefect run: {links['prefect_run_url']}")
    if links.get("console_url"):
        lines.append(f"Console: {links['console_url']}")
    if details.get("hint"):
        lines += ["", f"Try first: {details['hint']}"]
    ids = ", ".join(str(i["id"]) for i in instances)
    lines += ["", f"Alert id(s): {ids}. Acknowledge to stop escalation: headwater alerts ack <id>"]
    secrets = list(secrets)
    return redact(title, secrets), redact("\n".join(lines), secrets)


def _stream_message(
    kind: str, instances: Sequence[Mapping[str, Any]], secrets: Iterable[str] = ()
) -> tuple[str, str]:
    """A stream processor's firings: one line per rule and key, with the values that fired it."""
    first = instances[0]
    pipeline = first["pipeline_name"]
    severity = max((i["severity"] for i in instances), key=("info", "warning", "critical").index)
    prefix = "ESCALATED " if kind == "escalation" else ""
    key = ", ".join(f"{k} {v}" for k, v in (first["details"]["stream"].get("key") or {}).items())
    more = f" and {len(instances) - 1} more" if len(instances) > 1 else ""
    title = f"[{prefix}{severity.upper()}] {pipeline}: {first['rule_name']} ({key or 'all events'}){more}"
    lines = [f"Stream processor {pipeline}, alert step {first['details']['stream'].get('step')}", ""]
    for inst in instances:
        stream = inst["details"]["stream"]
        entry = f" (entry {stream['entry_id']})" if stream.get("entry_id") else ""
        lines.append(f"- [{inst['severity']}] {inst['details']['fired'][0]}{entry}")
    ids = ", ".join(str(i["id"]) for i in instances)
    lines += [
        "",
        f"Alert id(s): {ids}. Repeats of a rule for the same key add to the open alert without a "
        "message until it is resolved: headwater alerts resolve <id>",
    ]
    secrets = list(secrets)
    return redact(title, secrets), redact("\n".join(lines), secrets)


def resolved_message(
    instances: Sequence[Mapping[str, Any]], now: datetime, by: str, secrets: Iterable[str] = ()
) -> tuple[str, str]:
    first = instances[0]
    pipeline = first["pipeline_name"]
    rules = ", ".join(i["rule_name"] for i in instances)
    title = f"[RESOLVED] {pipeline}: {rules}"
    lines = [f"Pipeline {pipeline}: resolved by {by}.", ""]
    for inst in instances:
        opened: datetime = inst["opened_at"]
        minutes = (now - opened).total_seconds() / 60
        was = "; ".join(inst["details"]["fired"])
        lines.append(f"- {inst['rule_name']} (alert {inst['id']}), open {minutes:.0f} min: was {was}")
    links = first["details"].get("links") or {}
    if links.get("console_url"):
        lines += ["", f"Console: {links['console_url']}"]
    secrets = list(secrets)
    return redact(title, secrets), redact("\n".join(lines), secrets)
