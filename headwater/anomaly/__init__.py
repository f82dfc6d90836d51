"""Anomaly detection on run history: features per run, a detector per pipeline, models on disk."""
