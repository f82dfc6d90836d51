"""Running a pipeline: the run's state machine and step execution, independent of the orchestrator."""

from headwater.pipeline.run import PipelineRun, StepResult

__all__ = ["PipelineRun", "StepResult"]
