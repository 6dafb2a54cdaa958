"""The pose-tracking pipeline: detect -> (box smoothing) -> track -> pose -> (pose smoothing).

:class:`PipelineConfig` is the one typed configuration that the CLI, the
FiftyOne operators and Python share; :class:`PoseTrackingPipeline` runs it
over a stream of frames with no database involved, and
:func:`fiftyone_posetrack.run` runs it over a FiftyOne video collection.
"""

from fiftyone_posetrack.pipeline.config import PipelineConfig
from fiftyone_posetrack.pipeline.core import FrameResult, PoseTrackingPipeline

__all__ = ["PipelineConfig", "PoseTrackingPipeline", "FrameResult"]
