"""Store tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them; keep both in step
(a test compares the migrated schema with this metadata)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

data_pipelines = sa.Table(
    "data_pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("pipeline_type", sa.String(20), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("spec_path", sa.Text, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("schedule_cron", sa.String(200)),
    sa.Column("schedule_timezone", sa.String(100)),
    sa.Column("schedule_interval_seconds", sa.Float),
    sa.Column("alert_settings", sa.JSON),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "pipeline_id", sa.Integer, sa.ForeignKey("data_pipelines.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("step_type", sa.String(20), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("depends_on", sa.JSON, nullable=False),
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("timeout_seconds", sa.Float),
    sa.Column("retry_policy", sa.JSON, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.UniqueConstraint("pipeline_id", "name", name="uq_pipeline_steps_pipeline_name"),
)

data_sources = sa.Table(
    "data_sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "pipeline_id", sa.Integer, sa.ForeignKey("data_pipelines.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("incremental_cursor", sa.String(200)),
    sa.Column("config", sa.JSON, nullable=False),
    sa.UniqueConstraint("pipeline_id", "name", name="uq_data_sources_pipeline_name"),
)

data_destinations = sa.Table(
    "data_destinations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "pipeline_id", sa.Integer, sa.ForeignKey("data_pipelines.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("step_name", sa.String(200), nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("write_mode", sa.String(20), nullable=False),
    sa.Column("primary_key", sa.JSON, nullable=False),
    sa.Column("warehouse", sa.Text, nullable=False),
    sa.UniqueConstraint("pipeline_id", "step_name", name="uq_data_destinations_pipeline_step"),
)

pipeline_executions = sa.Table(
    "pipeline_executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "pipeline_id", sa.Integer, sa.ForeignKey("data_pipelines.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("flow_run_id", sa.String(36)),
    sa.Column("execution_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("records_processed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("records_inserted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("records_updated", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("records_failed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("records_loaded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("records_quarantined", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("quality_score", sa.Float),
    sa.Column("peak_memory_mb", sa.Float),
    sa.Column("cpu_seconds", sa.Float),
    sa.Column("error_type", sa.String(200)),
    sa.Column("error_message", sa.Text),
    sa.Column("failed_step", sa.String(200)),
    sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("warnings", sa.JSON, nullable=False),
    sa.Column("parameters", sa.JSON),
    # circuit breakers (0009): the oldest reused extract's age in seconds, and each one used
    # [{step, source, breaker, extracted_at, age_seconds, rows, run_id}]; null: every extract was fresh
    sa.Column("data_age_seconds", sa.Float),
    sa.Column("stale_data", sa.JSON),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_started_at", sa.Float, nullable=False),
    sa.Index("ix_pipeline_executions_pipeline_started", "pipeline_name", "started_at"),
    sa.Index("ix_pipeline_executions_status", "status"),
    sa.Index("ix_pipeline_executions_started", "started_at"),
)

step_executions = sa.Table(
    "step_executions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("step_name", sa.String(200), nullable=False),
    sa.Column("step_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", TS),
    sa.Column("ended_at", TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("records_in", sa.BigInteger),
    sa.Column("records_out", sa.BigInteger),
    sa.Column("peak_memory_mb", sa.Float),
    sa.Column("memory_delta_mb", sa.Float),
    sa.Column("sample_in", sa.JSON),
    sa.Column("sample_out", sa.JSON),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("error_type", sa.String(200)),
    sa.Column("error_message", sa.Text),
    sa.UniqueConstraint("execution_id", "step_name", name="uq_step_executions_execution_step"),
)

data_lineage = sa.Table(
    "data_lineage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("execution_id", sa.String(36), nullable=False),
    sa.Column("source_dataset", sa.Text, nullable=False),
    sa.Column("source_table", sa.String(400), nullable=False),
    sa.Column("source_column", sa.String(200), nullable=False),
    sa.Column("target_dataset", sa.Text, nullable=False),
    sa.Column("target_table", sa.String(400), nullable=False),
    sa.Column("target_column", sa.String(200), nullable=False),
    sa.Column("transformation_type", sa.String(20), nullable=False),
    sa.Column("transformations", sa.JSON, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
    sa.Index("ix_data_lineage_target", "target_table", "target_column"),
    sa.Index("ix_data_lineage_source", "source_table", "source_column"),
    sa.Index("ix_data_lineage_pipeline", "pipeline_name"),
)

data_quality_rules = sa.Table(
    "data_quality_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("rule_name", sa.String(200), nullable=False),
    sa.Column("expectation_type", sa.String(200), nullable=False),
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("kwargs", sa.JSON, nullable=False),
    sa.Column("dimension", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("pipeline_name", "suite", "rule_name", name="uq_data_quality_rules_rule"),
)

data_quality_checks = sa.Table(
    "data_quality_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("step_name", sa.String(200), nullable=False),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("table_name", sa.String(400), nullable=False),
    sa.Column("rule_name", sa.String(200), nullable=False),
    sa.Column("expectation_type", sa.String(200), nullable=False),
    sa.Column("dimension", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("records_checked", sa.BigInteger, nullable=False),
    sa.Column("records_passed", sa.BigInteger, nullable=False),
    sa.Column("records_failed", sa.BigInteger, nullable=False),
    sa.Column("pass_rate", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("observed_value", sa.JSON),
    sa.Column("sample_failures", sa.JSON, nullable=False),
    sa.Column("remediation", sa.Text),
    sa.Column("checked_at", TS, nullable=False),
    sa.Column("weight", sa.Float),
    sa.Index("ix_data_quality_checks_execution", "execution_id"),
    sa.Index("ix_data_quality_checks_pipeline_rule", "pipeline_name", "rule_name", "checked_at"),
    sa.Index("ix_data_quality_checks_checked", "checked_at"),
)

# ------------------------------------------------------------ alerting (headwater.alerting)

pipeline_alerts = sa.Table(
    "pipeline_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("pipeline_name", sa.String(200)),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("condition", sa.JSON, nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("escalation", sa.JSON),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

alert_instances = sa.Table(
    "alert_instances",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # = fingerprint while open/acknowledged/suppressed, NULL after: one active instance per fingerprint
    sa.Column("active_fingerprint", sa.String(64), unique=True),
    sa.Column("rule_name", sa.String(200), nullable=False),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("condition_key", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("first_run_id", sa.String(36), nullable=False),
    sa.Column("last_run_id", sa.String(36), nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("opened_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False),
    sa.Column("next_escalation_at", TS),
    sa.Column("acknowledged_at", TS),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("resolved_at", TS),
    sa.Column("resolved_by", sa.String(200)),
    sa.Column("resolved_run_id", sa.String(36)),
    sa.Index("ix_alert_instances_fingerprint_status", "fingerprint", "status"),
    sa.Index("ix_alert_instances_pipeline_opened", "pipeline_name", "opened_at"),
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_ids", sa.JSON, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Index("ix_alert_deliveries_status", "status"),
)

alert_silences = sa.Table(
    "alert_silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("ended_at", TS),
)

# ------------------------------------------------------------ console access (headwater.access)

console_users = sa.Table(
    "console_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", TS),
    sa.Column("last_login_at", TS),
    sa.Column("password_changed_at", TS, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    # sha256 of the token the browser holds: the token itself is never stored
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("ended_at", TS),
    sa.Column("end_reason", sa.String(30)),
    sa.Index("ix_console_sessions_user", "user_id"),
)

console_settings = sa.Table(
    "console_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("username", sa.String(100)),
    sa.Column("role", sa.String(30)),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("parameters", sa.JSON),
    # ok | denied | failed
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    # console | cli
    sa.Column("source", sa.String(20), nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_user_at", "username", "at"),
)

# ------------------------------------------------------------ API tokens (migration 0007)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    # sha256 of the secret: the secret itself is shown once, at creation, and never stored
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    # the secret's first characters, to tell tokens apart in lists and logs
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("role", sa.String(30), nullable=False),
    # whose token it is (the audit log names them); None: a service token
    sa.Column("username", sa.String(100)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("expires_at", TS),
    sa.Column("last_used_at", TS),
    sa.Column("revoked_at", TS),
)


# ------------------------------------------------------------ circuit breakers (headwater.breakers)

circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    # rest:<host:port>, sql:<database>, a spec's breaker.key, or channel:<name>
    sa.Column("key", sa.String(300), primary_key=True),
    # source | channel
    sa.Column("kind", sa.String(20), nullable=False),
    # closed | open | half_open
    sa.Column("state", sa.String(20), nullable=False),
    # ISO timestamps of the failures in the current window (at most `failures` of them)
    sa.Column("failure_times", sa.JSON, nullable=False),
    sa.Column("opened_at", TS),
    sa.Column("open_until", TS),
    sa.Column("probes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("probe_started_at", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("last_failure_at", TS),
    sa.Column("last_success_at", TS),
    # the thresholds of the last failure recorded: {failures, window, open_for, half_open_probes}
    sa.Column("policy", sa.JSON),
    sa.Column("updated_at", TS, nullable=False),
)

last_good_extracts = sa.Table(
    "last_good_extracts",
    metadata,
    sa.Column("pipeline_name", sa.String(200), primary_key=True),
    sa.Column("step_name", sa.String(200), primary_key=True),
    sa.Column("source_name", sa.String(200), nullable=False),
    # a Parquet file under $HEADWATER_HOME/last_good/ (one per pipeline and step; replaced atomically)
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("extracted_at", TS, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
)


# ------------------------------------------------------------ webhook events (0008, headwater.webhooks)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    # SQLite: the rowid (so it autoincrements); PostgreSQL: a bigint from a sequence
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    # the {endpoint} of POST /api/webhooks/{endpoint}: a spec's webhook source names it
    sa.Column("endpoint", sa.String(100), nullable=False),
    # the Idempotency-Key header, or sha256 of the body when the sender sent none
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    # the raw JSON body as received (UTF-8)
    sa.Column("body", sa.Text, nullable=False),
    # the signature's timestamp, and when Headwater stored the event
    sa.Column("signed_at", TS, nullable=False),
    sa.Column("received_at", TS, nullable=False),
    # the event's place in the endpoint's order, given when a pipeline first reads it (null until then);
    # a pipeline's watermark is the last seq it loaded, committed with its load
    sa.Column("seq", sa.BigInteger),
    sa.UniqueConstraint("endpoint", "idempotency_key", name="uq_webhook_events_endpoint_key"),
    sa.Index("ix_webhook_events_endpoint_seq", "endpoint", "seq"),
)


# ------------------------------------------------------------ stream processors (0010, headwater.streams)

stream_processors = sa.Table(
    "stream_processors",
    metadata,
    # the streaming spec's name; one row per processor (its figures since it last started)
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("group_name", sa.String(200), nullable=False),
    sa.Column("consumer", sa.String(200), nullable=False),
    # running | stopped | failed
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("last_batch_at", TS),
    sa.Column("events_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events_loaded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events_dead", sa.BigInteger, nullable=False, server_default="0"),
    # the last stream entry id committed to the warehouse (the warehouse's headwater_watermarks row
    # is the one that counts; this is a copy for display)
    sa.Column("last_id", sa.String(64)),
    # entries of the stream the group has not read yet (XINFO GROUPS), at the last batch
    sa.Column("lag", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", TS, nullable=False),
)


# ------------------------------------------------------------ stream metrics (0011, streams/records.py)

stream_metrics = sa.Table(
    "stream_metrics",
    metadata,
    # one row per processor and minute (UTC, the minute's start), upserted while the minute lasts
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("minute", TS, primary_key=True),
    # entries read (including those only acknowledged), rows loaded, entries dead-lettered, batches
    sa.Column("events_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events_loaded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events_dead", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("batches", sa.BigInteger, nullable=False, server_default="0"),
    # errors in this minute: transient failures retried (Redis or the warehouse unreachable), the run failing
    sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
    # seconds of the minute the processor was running, and events_read / seconds
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("throughput", sa.Float, nullable=False),
    # the group's lag (XINFO GROUPS) and pending entries (XPENDING) at the minute's last batch
    sa.Column("lag", sa.BigInteger),
    sa.Column("pending", sa.BigInteger),
    # milliseconds from an entry's append to Redis (its id) to its batch's commit: p50 and p99
    sa.Column("latency_p50_ms", sa.Float),
    sa.Column("latency_p99_ms", sa.Float),
    # the processor process's CPU seconds (user + system, since it started) and resident memory
    sa.Column("cpu_seconds", sa.Float),
    sa.Column("rss_bytes", sa.BigInteger),
    sa.Column("updated_at", TS, nullable=False),
)
