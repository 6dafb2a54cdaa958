"""Operators that bring videos and annotations into a dataset."""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._common import Params
from .formats import PATH_HELP


class ImportVideos(foo.Operator):
    """Adds the videos of a file or directory to the current dataset."""

    @property
    def config(self):
        return foo.OperatorConfig(
            name="import_videos",
            label="Pose tracking: import videos",
            description="Add video files (or a directory of them) to this dataset",
            icon="video_library",
            dynamic=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str(
            "path",
            label="Video file or directory",
            description=f"A video file, or a directory searched recursively for videos; {PATH_HELP}",
            required=True,
        )
        return types.Property(inputs, view=types.View(label="Import videos"))

    def execute(self, ctx):
        from fiftyone_posetrack.fo.dataset import add_videos

        path = Params(ctx).path("path")
        before = len(ctx.dataset)
        ids = add_videos(ctx.dataset, [path])
        ctx.trigger("reload_dataset")
        return {"num_videos": len(ids), "num_added": len(ctx.dataset) - before}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_videos", label="Videos found")
        outputs.int("num_added", label="Videos added")
        return types.Property(outputs)
