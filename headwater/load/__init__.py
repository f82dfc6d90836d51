"""Load: one transaction per load, into SQLite or PostgreSQL, append / overwrite / upsert."""

from headwater.load.base import LoadResult, WatermarkUpdate, load_frame
from headwater.load.watermarks import read_watermark

__all__ = ["LoadResult", "WatermarkUpdate", "load_frame", "read_watermark"]
