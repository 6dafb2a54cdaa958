"""Package discovery (everything else is in pyproject.toml).

``find_packages`` finds the library; the plugin's manifest and operators, which
live at the repository root, are added as ``fiftyone_posetrack.plugin``
through the ``package-dir`` mapping in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["fiftyone_posetrack", "fiftyone_posetrack.*"])
    + ["fiftyone_posetrack.plugin", "fiftyone_posetrack.plugin.operators"]
)
