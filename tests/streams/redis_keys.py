"""The real Redis for stream tests: a client, and stream keys unique to one test, deleted after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("HEADWATER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(name="rds")
def rds_fixture() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(name="stream_key")
def stream_key_fixture(rds: redis.Redis) -> Iterator[str]:
    """A stream key no other test uses; it and its dead-letter stream are deleted afterwards."""
    key = f"hw_test_stream_{uuid.uuid4().hex[:12]}"
    yield key
    rds.delete(key, f"{key}:dead", f"{key}:dead:late_ids")
