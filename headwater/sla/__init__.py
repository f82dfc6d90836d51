"""Service levels (a spec's `sla:`): attainment per day over the run history, and what an SLA check
finds at a given moment (for the alert engine's sla_breach, sla_projected_miss and sla_missed_run).

Plain functions over the store's pipeline_executions with an injected `now`: nothing here reads the
clock. Which runs count:

- success: completed or completed_with_warnings; failure: failed or crashed (a refused run is recorded
  failed); skipped runs (a precondition did not hold: nothing to do) and running runs do not count.
- A day is a calendar day in the SLA's time zone (23 or 25 hours across a DST change); today is
  measured up to `now`.

Per day and objective (None: nothing to measure that day):
- success_rate: the rate over the `window` that ends at the day's end (today: now), by start time, of
  finished runs; met when it is at least the target.
- max_duration: the longest run started that day (a run still running counts with its time so far);
  met when it is within the limit.
- freshness: the largest age of the last successful run (now minus its end) at any moment of the day;
  met when it stayed within the limit. A pipeline is measured from its first successful run on.
- deadline (days in `days` only): a successful run ended between the day's midnight and its deadline;
  today before the deadline without one: None (pending). Deadlines before the pipeline's first
  recorded run are not measured.

Modules: history (reading runs, which count, the expected duration), attainment (per day), check
(what holds at `now`, for alerts), report (JSON-ready, for the CLI, the console and the HTTP API).
"""

from headwater.sla.attainment import ObjectiveAttainment, attainment, objectives
from headwater.sla.check import SlaFindings, findings
from headwater.sla.history import (
    EXPECTED_MIN_RUNS,
    EXPECTED_RUNS,
    FAILED,
    FINISHED,
    HISTORY,
    OK,
    expected_duration,
    first_runs,
    read_history,
    resolved,
)
from headwater.sla.report import attainment_frame, sla_report

__all__ = [
    "EXPECTED_MIN_RUNS",
    "EXPECTED_RUNS",
    "FAILED",
    "FINISHED",
    "HISTORY",
    "OK",
    "ObjectiveAttainment",
    "SlaFindings",
    "attainment",
    "attainment_frame",
    "expected_duration",
    "findings",
    "first_runs",
    "objectives",
    "read_history",
    "resolved",
    "sla_report",
]
