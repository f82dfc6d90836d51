"""Prefect flows: parameters, ordering, loading blocks."""
