"""Privacy ops: de-identification (HIPAA Safe Harbor) and masking."""

from __future__ import annotations
