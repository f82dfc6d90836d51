"""The metadata store: pipelines, steps, sources, destinations and every run and step execution."""

from headwater.store.store import Store

__all__ = ["Store"]
