"""Writing a video's new labels aside and swapping them in once they are complete.

A job's labels of one video are first written to the staging collection
``posetrack_staging`` of FiftyOne's database (one document per frame, tagged
with a token unique to the job run and video), never into the frame documents,
which FiftyOne refuses to load with unknown keys. When the video is complete,
:meth:`StagedVideo.commit` replaces the output fields of *every* frame of the
video in one server-side ``$lookup`` + ``$merge`` aggregation (frames without a
staged label get None), then drops the staged documents. Until then the
video's earlier labels are untouched, so an interrupted ``overwrite`` run keeps
the complete labels of the run before it.

Staged documents of a run that died are removed when their video is claimed
again (:func:`discard_video`); those of a deleted dataset, by the next job of any
dataset (:func:`prune_staging`). Each staged document names its dataset's frame
collection (``frames``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Mapping

import fiftyone as fo
from bson import ObjectId
from pymongo import UpdateOne

from fiftyone_posetrack.fo.labels import frame_ids

__all__ = ["STAGING_COLLECTION", "StagedVideo", "declare_fields", "discard_video", "prune_staging"]

#: the collection of staged labels in FiftyOne's database
STAGING_COLLECTION = "posetrack_staging"

_INDEXED: set[int] = set()


def _staging(dataset):
    coll = dataset._frame_collection.database[STAGING_COLLECTION]
    if id(coll.database.client) not in _INDEXED:
        coll.create_index([("frame", 1), ("token", 1)])
        coll.create_index([("sample", 1), ("status_field", 1)])
        coll.create_index([("frames", 1)])
        _INDEXED.add(id(coll.database.client))
    return coll


def prune_staging(dataset) -> int:
    """Drops the staged labels of datasets that no longer exist (their frame collection is gone).

    Staged labels of existing datasets are never touched (a run of theirs may be
    writing them). Returns the number of documents dropped.
    """
    coll = _staging(dataset)
    staged_in = [name for name in coll.distinct("frames") if name]
    gone = sorted(set(staged_in) - set(coll.database.list_collection_names()))
    if not gone:
        return 0
    return coll.delete_many({"frames": {"$in": gone}}).deleted_count


def discard_video(dataset, sample_id: str, status_field: str) -> None:
    """Drops the staged labels of a video's job (``status_field`` names the job), e.g. of a dead run."""
    _staging(dataset).delete_many({"sample": ObjectId(sample_id), "status_field": status_field})


class StagedVideo:
    """The new labels of one video of one job, held aside until :meth:`commit`.

    Args:
        dataset: the video dataset
        sample_id: the video's sample id
        fields: ``{frame field: label class}`` the job writes
        status_field: the job's status field (names the job's staged documents)
        token: tags the staged documents (default: a fresh uuid); jobs pass
            their claim's fencing token
    """

    def __init__(self, dataset, sample_id: str, fields: Mapping[str, type], status_field: str, token: str | None = None):
        self.dataset, self.sample_id, self.fields = dataset, sample_id, dict(fields)
        self.status_field = status_field
        self.token = token or uuid.uuid4().hex
        self._coll = _staging(dataset)

    def write(self, labels: Mapping[str, Mapping[int, "fo.Label | None"]]) -> None:
        """Stages ``{field: {frame_number: label or None}}`` (creating missing frame documents)."""
        numbers = sorted({int(n) for per_frame in labels.values() for n in per_frame})
        if not numbers:
            return
        ids = frame_ids(self.dataset, self.sample_id, numbers)
        updates: dict[int, dict] = {}
        for name, per_frame in labels.items():
            for n, label in per_frame.items():
                updates.setdefault(int(n), {})[name] = None if label is None else label.to_dict()
        sample, frames = ObjectId(self.sample_id), self.dataset._frame_collection_name
        ops = [
            UpdateOne(
                {"frame": ObjectId(ids[n]), "token": self.token},
                {"$set": {**values, "sample": sample, "status_field": self.status_field, "frames": frames}},
                upsert=True,
            )
            for n, values in updates.items()
        ]
        self._coll.bulk_write(ops, ordered=False)

    def commit(self, guard: tuple[str, dict] | None = None) -> None:
        """Replaces the output fields of every frame of the video by the staged labels, then drops them.

        Args:
            guard: ``(collection name, filter)``: the swap writes only while a
                document of that collection matches the filter, checked in the
                same server-side aggregation (a job passes its sample document
                and claim token: a claim taken over writes nothing)
        """
        from fiftyone.core.frame import Frame

        self._declare()
        now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as FiftyOne stores it
        frames = self.dataset._frame_collection
        project = {name: {"$ifNull": [{"$first": f"$_staged.{name}"}, None]} for name in self.fields}
        fence = []
        if guard is not None:
            coll, query = guard
            fence = [
                {"$lookup": {"from": coll, "pipeline": [{"$match": query}, {"$project": {"_id": 1}}], "as": "_fence"}},
                {"$match": {"_fence.0": {"$exists": True}}},
            ]
        frames.aggregate(
            [
                {"$match": {"_sample_id": ObjectId(self.sample_id)}},
                *fence,
                {
                    "$lookup": {
                        "from": STAGING_COLLECTION,
                        "localField": "_id",
                        "foreignField": "frame",
                        "pipeline": [{"$match": {"token": self.token}}],
                        "as": "_staged",
                    }
                },
                {"$project": {**project, "last_modified_at": {"$literal": now}}},
                {"$merge": {"into": frames.name, "on": "_id", "whenMatched": "merge", "whenNotMatched": "discard"}},
            ]
        )
        self.discard()
        Frame._reload_docs(self.dataset._frame_collection_name, sample_ids=[self.sample_id])

    def discard(self) -> None:
        """Drops this video's staged labels."""
        self._coll.delete_many({"token": self.token})

    def _declare(self) -> None:
        declare_fields(self.dataset, self.fields)


def declare_fields(dataset, fields: Mapping[str, type]) -> None:
    """Adds ``{frame field: label class}`` to the frame schema where missing (as ``set_values`` would)."""
    for name, cls in fields.items():
        if not dataset.has_frame_field(name):
            dataset.add_frame_field(name, fo.EmbeddedDocumentField, embedded_doc_type=cls)
