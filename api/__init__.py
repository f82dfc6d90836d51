"""Headwater's HTTP API (FastAPI): health now; pipelines, runs, quality and lineage to come."""
