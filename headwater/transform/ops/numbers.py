"""Number ops: round, bound, bucket, scale, parse."""

from __future__ import annotations
