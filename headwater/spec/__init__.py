"""Pipeline specs: typed models, the YAML loader and the checks `headwater validate` runs."""

from headwater.spec.loader import load_pipeline, load_pipelines
from headwater.spec.models import PipelineSpec

__all__ = ["PipelineSpec", "load_pipeline", "load_pipelines"]
