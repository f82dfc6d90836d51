"""Signed webhooks: verify a post's signature (signature.py), store it once per idempotency key
before answering (intake.py), find which spec declares an endpoint (endpoints.py), and hand the
events a pipeline has not loaded yet to its extract (events.py)."""

from headwater.webhooks.endpoints import Endpoint, EndpointConflict, EndpointDirectory
from headwater.webhooks.events import read_events
from headwater.webhooks.intake import IdempotencyConflict, Received, idempotency_key, store_event
from headwater.webhooks.signature import SIGNATURE_HEADER, BadSignature, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "BadSignature",
    "Endpoint",
    "EndpointConflict",
    "EndpointDirectory",
    "IdempotencyConflict",
    "Received",
    "idempotency_key",
    "read_events",
    "sign",
    "store_event",
    "verify",
]
