"""A channel whose messages keep failing opens its own circuit breaker: while it is open, messages
to it are not tried but recorded `skipped` (with until when); after the open period one message
probes it, and its success closes the breaker.

Real services: a local HTTP receiver of apprise json:// posts that refuses (HTTP 500) on demand,
the store of `store_engine` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.alerting import AlertEngine, AlertRules, AppriseDeliverer, Channels, DeliveryFailed
from headwater.breakers import CLOSED, OPEN, Breakers, open_breakers
from tests.alerting.test_engine import FAILED, T0, failed_run


class Receiver:
    def __init__(self) -> None:
        self.refuse = False
        self.posts: list[dict[str, Any]] = []
        self.tries = 0


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.tries += 1
            if not state.refuse:
                state.posts.append(json.loads(body))
            self.send_response(500 if state.refuse else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"json://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_failing_channel_is_skipped_while_its_breaker_is_open_then_probed(
    store_engine: sa.Engine, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    channels = Channels.model_validate(
        {
            "channels": {"hook": {"url": url}},
            "delivery": {
                "attempts": 1,
                "breaker": {"failures": 2, "window_minutes": 60, "open_minutes": 10},
            },
        }
    )
    rules = AlertRules.model_validate({"severity_channels": {"critical": ["hook"]}, "rules": [FAILED]})
    engine = AlertEngine(store_engine, channels, rules, deliver=AppriseDeliverer(attempts=1))
    state.refuse = True
    for i in (1, 2):  # two messages refused: the breaker opens at the second
        with pytest.raises(DeliveryFailed):
            engine.process_run(failed_run(f"run-{i}", pipeline=f"p{i}"), T0 + timedelta(minutes=i))
    assert state.tries == 2
    opened = T0 + timedelta(minutes=2)
    (breaker,) = open_breakers(store_engine, opened)
    assert (breaker.key, breaker.kind, breaker.state) == ("channel:hook", "channel", OPEN)
    assert breaker.open_until == opened + timedelta(minutes=10)

    # open: the third message is not tried (no request reaches the receiver), recorded skipped
    (skipped,) = engine.process_run(failed_run("run-3", pipeline="p3"), T0 + timedelta(minutes=5))
    assert state.tries == 2
    assert (skipped.status, skipped.attempts) == ("skipped", 0)
    assert skipped.reason is not None
    assert "circuit open for channel:hook until 2026-11-20 12:12:00 UTC" in skipped.reason

    # after the open period the channel is back: one message probes it and closes the breaker
    state.refuse = False
    (probe,) = engine.process_run(failed_run("run-4", pipeline="p4"), T0 + timedelta(minutes=13))
    assert probe.status == "sent" and state.tries == 3 and len(state.posts) == 1
    assert "p4" in state.posts[0]["title"]
    after = Breakers(store_engine).get("channel:hook")
    assert after is not None and after.state == CLOSED
    statuses = [d.status for d in engine.deliveries()]
    assert statuses == ["failed", "failed", "skipped", "sent"]
