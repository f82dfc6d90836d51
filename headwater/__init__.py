"""Headwater: declarative data pipelines. The domain package: knows nothing of Prefect or Streamlit."""

__version__ = "0.1.0"
