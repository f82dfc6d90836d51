"""String ops: clean, reshape and standardise text."""

from __future__ import annotations
