"""Test events: patient vitals in the healthcare capstone's device JSON (nested measurements,
blood_pressure, location), a given share of them with an out-of-range vital."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

RANGES = {"heart_rate": (40, 200), "systolic": (70, 250), "temperature": (95.0, 110.0)}
"""The ranges the vitals example checks (inclusive)."""
_OUT_OF_RANGE = {"heart_rate": (20, 250), "systolic": (50, 300), "temperature": (90.0, 112.0)}


def vitals_events(
    count: int, *, bad_share: float = 0.05, seed: int = 0, patients: int = 200
) -> Iterator[dict[str, Any]]:
    """`count` events; about `bad_share` of them break exactly one range."""
    rng = random.Random(seed)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(count):
        patient = rng.randrange(patients)
        vitals: dict[str, Any] = {
            "heart_rate": rng.randint(55, 120),
            "systolic": rng.randint(95, 160),
            "temperature": round(rng.uniform(96.5, 100.5), 1),
        }
        if rng.random() < bad_share:
            which = rng.choice(sorted(_OUT_OF_RANGE))
            vitals[which] = _OUT_OF_RANGE[which][rng.randrange(2)]
            if which == "temperature":
                vitals[which] = float(vitals[which])
        yield {
            "patient_id": f"P{patient:05d}",
            "device_id": f"D{patient:05d}-{patient % 3}",
            "timestamp": _iso(start + timedelta(milliseconds=250 * i)),
            "measurements": {
                "heart_rate": vitals["heart_rate"],
                "blood_pressure": {"systolic": vitals["systolic"], "diastolic": rng.randint(60, 95)},
                "temperature": vitals["temperature"],
                "oxygen_saturation": rng.randint(92, 100),
                "respiratory_rate": rng.randint(12, 20),
            },
            "location": {"ward": f"W{patient % 7}", "bed": patient % 30},
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def produce(
    client: redis.Redis,
    stream: str,
    events: Iterator[dict[str, Any]],
    *,
    field: str = "payload",
    rate: float | None = None,
    chunk: int = 1000,
) -> int:
    """XADD each event's JSON under `field`, pipelined `chunk` at a time, at most `rate` per second;
    the number written."""
    written, began = 0, time.monotonic()
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, {field: json.dumps(event, separators=(",", ":"))})
        written += 1
        if written % chunk == 0 or (rate is not None and rate < chunk):
            pipe.execute()
            if rate is not None:
                ahead = written / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
    pipe.execute()
    return written
