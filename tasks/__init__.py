"""Prefect tasks: each one observable, retryable call into the domain."""
