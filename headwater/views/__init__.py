"""Read models for the console (and the CLI): what each page shows, computed from the store with
SQL filters and Polars aggregates. Plain Python and Polars; no Streamlit, no Prefect."""
