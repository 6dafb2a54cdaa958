"""FiftyOne plugin ``@posetrack/pose-tracking``: operators for every pipeline stage.

The operators are thin: they read their parameters, call
:mod:`fiftyone_posetrack` and report. Each one is listed in ``fiftyone.yml``
(FiftyOne silently skips unlisted operators).
"""

from .data import ImportVideos


def register(p):
    p.register(ImportVideos)
