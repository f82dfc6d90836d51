"""Deliver a message to a channel with apprise. apprise returns False instead of raising: a refusal is
retried with backoff and ends in DeliveryFailed (a NotificationError), never silently."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from headwater.errors import NotificationError
from headwater.redact import redact

log = logging.getLogger(__name__)


class DeliveryFailed(NotificationError):
    """A channel refused a message on every attempt."""

    def __init__(self, channel: str, attempts: int, detail: str) -> None:
        self.channel = channel
        self.attempts = attempts
        self.detail = detail
        super().__init__(f"channel {channel!r} refused the message after {attempts} attempt(s): {detail}")


@dataclass(frozen=True)
class SendResult:
    attempts: int


class Deliverer(Protocol):
    def send(self, channel: str, url: str, title: str, body: str) -> SendResult:
        """Send or raise DeliveryFailed."""
        ...


class AppriseDeliverer:
    """Sends through apprise; `sleep` is injectable so tests do not wait through the backoff."""

    def __init__(
        self, attempts: int = 3, backoff_seconds: float = 2.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def send(self, channel: str, url: str, title: str, body: str) -> SendResult:
        import apprise  # imported on use: it loads every plugin

        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryFailed(channel, 0, f"apprise does not accept the URL {redact(url)!r}")
        wait = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            if notifier.notify(title=title, body=body):
                return SendResult(attempt)
            log.warning("channel %s refused a message (attempt %d of %d)", channel, attempt, self.attempts)
            if attempt < self.attempts:
                self.sleep(wait)
                wait *= 2
        raise DeliveryFailed(channel, self.attempts, "apprise reported the notification as not sent")
