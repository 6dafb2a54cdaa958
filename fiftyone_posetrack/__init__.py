"""fiftyone-posetrack: multi-person pose tracking for FiftyOne video datasets.

The package is organised by pipeline stage; each stage is a small module with
numpy-in, numpy-out functions and classes (see :mod:`fiftyone_posetrack.types`),
and the FiftyOne glue lives apart in :mod:`fiftyone_posetrack.fo`.
"""

__version__ = "0.1.0"
