"""Structure ops: nested values, reshaping, unions."""

from __future__ import annotations
