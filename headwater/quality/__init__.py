"""Data quality: Great Expectations suites evaluated on Polars, row-level results, scores."""
