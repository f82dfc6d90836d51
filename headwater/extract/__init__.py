"""Extract: every source becomes a Polars frame, with the watermark it would advance to."""

from headwater.extract.base import ExtractResult, extract_source

__all__ = ["ExtractResult", "extract_source"]
