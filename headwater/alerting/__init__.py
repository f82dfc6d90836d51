"""Alerting: channels, rules, alert instances and their messages. Plain domain code: every function
takes `now` and never reads the wall clock, so flows, the CLI and tests drive time."""

from headwater.alerting.config import (
    AlertRule,
    AlertRules,
    Channel,
    Channels,
    load_channels,
    load_folder,
    load_rules,
)
from headwater.alerting.delivery import AppriseDeliverer, Deliverer, DeliveryFailed
from headwater.alerting.engine import AlertEngine, engine_for
from headwater.alerting.facts import RunFacts
from headwater.alerting.records import Delivery, MttaMttr, Silence

__all__ = [
    "AlertEngine",
    "AlertRule",
    "AlertRules",
    "AppriseDeliverer",
    "Channel",
    "Channels",
    "Deliverer",
    "Delivery",
    "DeliveryFailed",
    "MttaMttr",
    "RunFacts",
    "Silence",
    "engine_for",
    "load_channels",
    "load_folder",
    "load_rules",
]
