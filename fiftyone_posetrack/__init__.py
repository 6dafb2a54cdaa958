"""fiftyone-posetrack: multi-person pose tracking for FiftyOne video datasets.

The package is organised by pipeline stage; each stage is a small module with
numpy-in, numpy-out functions and classes (see :mod:`fiftyone_posetrack.types`),
and the FiftyOne glue lives apart in :mod:`fiftyone_posetrack.fo`.
"""

__version__ = "0.1.0"

__all__ = ["run", "PipelineConfig"]


def __getattr__(name):
    # Lazy so that `import fiftyone_posetrack` (and the numerics) never imports FiftyOne.
    if name == "run":
        from fiftyone_posetrack.fo.run import run

        return run
    if name == "PipelineConfig":
        from fiftyone_posetrack.pipeline.config import PipelineConfig

        return PipelineConfig
    raise AttributeError(f"module 'fiftyone_posetrack' has no attribute {name!r}")
