"""One flow per example pipeline, named after it: the entrypoints of the deployments in prefect.yaml.
(A test checks that every spec in pipelines/ has its line here and a deployment.)"""

from flows.pipeline import flow_for

flights_daily = flow_for("flights_daily")
vendor_prices = flow_for("vendor_prices")
carrier_monthly = flow_for("carrier_monthly")
claims_deidentified = flow_for("claims_deidentified")
flights_clean = flow_for("flights_clean")
