"""The App's "Pose tracking" panel: one evaluation (or the tracked labels) at a glance.

For the chosen evaluation it shows the per-video metrics, the errors over
time (FP, FN, ID switches per frame; clicking a point opens that video at
that frame), the tracks (choosing one shows only its boxes and skeletons),
PoseTrack's per-joint AP (pose evaluations) and the records of the runs that
wrote the labels. The numbers come from :mod:`fiftyone_posetrack.fo.panel_data`;
this module only lays them out.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.types import BadInputError

NO_EVAL = "(tracked labels, no evaluation)"
METRIC_LABELS = {
    "mota": "MOTA", "idf1": "IDF1", "hota": "HOTA", "idsw": "ID sw.", "fp": "FP", "fn": "FN",
    "precision": "Precision", "recall": "Recall", "ap": "OKS AP", "ap50": "AP50", "ar": "AR",
    "pt_ap": "PoseTrack AP", "pt_mota": "PoseTrack MOTA", "lamr": "Miss rate (LAMR)",
}  # fmt: skip
ERROR_COLORS = {"fp": "#F38400", "fn": "#BE0032", "idsw": "#0067A5"}
ERROR_NAMES = {"fp": "false positives", "fn": "misses", "idsw": "ID switches"}
#: the track-quality flags (fiftyone_posetrack.tracking.quality.FLAGS) and their column titles
QUALITY_FLAGS = ("fragment", "jump", "drift", "low_confidence", "skeleton")
QUALITY_FLAG_LABELS = {"fragment": "Fragm.", "jump": "Jumps", "drift": "Drift", "low_confidence": "Low conf.",
                       "skeleton": "Skeleton"}  # fmt: skip


def fmt(value) -> str:
    """A table cell: floats with 3 decimals, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "–"
    return str(value)


def _table(panel, name, columns, on_click_row=None, label=None):
    table = types.TableView(on_click_row=on_click_row) if on_click_row else types.TableView()
    for key, title in columns:
        table.add_column(key, label=title)
    panel.list(name, types.Object(), view=table, label=label)


def _keypoints_field_for(dataset, box_field: str) -> str | None:
    """The skeletons of the tracks of ``box_field``: a pose run's field, else ``pred_keypoints``."""
    from fiftyone_posetrack.fo.panel_data import list_pose_tracking_evaluations

    for e in list_pose_tracking_evaluations(dataset):
        if e["kind"] == "poses":
            config = dataset.get_evaluation_info(e["key"]).config
            if getattr(config, "pred_box_field", None) in (box_field, f"frames.{box_field}"):
                return e["pred_field"][len("frames.") :]
    return "pred_keypoints" if dataset.has_frame_field("pred_keypoints") else None


class PoseTrackingPanel(foo.Panel):
    """Per-video metrics, errors over time, tracks, per-joint AP and run records of a tracked dataset."""

    @property
    def config(self):
        return foo.PanelConfig(
            name="pose_tracking_panel",
            label="Pose tracking",
            icon="directions_run",
            surfaces="grid",
            help_markdown=(
                "Choose an evaluation. Click a point of *Errors over time* to open that video at that "
                "frame; click a row of *Tracks* to show only that track's boxes and skeletons."
            ),
        )

    # ------------------------------------------------------------------ data

    def _choices(self, ctx) -> list[str]:
        from fiftyone_posetrack.fo.panel_data import list_pose_tracking_evaluations

        if ctx.dataset is None or ctx.dataset.media_type != "video":
            return []
        evals = list_pose_tracking_evaluations(ctx.dataset)
        # tracking runs first: the default choice is the first one
        return [e["key"] for e in sorted(evals, key=lambda e: (e["kind"] != "tracking", e["key"]))]

    def _load(self, ctx, eval_key):
        from fiftyone_posetrack.fo import panel_data as pd

        dataset = ctx.dataset
        state = {"eval_key": eval_key, "kind": None, "box_field": None, "keypoints_field": None,
                 "error": None, "track_message": None}  # fmt: skip
        data = {"videos": [], "errors": [], "tracks": [], "joints": [], "runs": [], "quality": [], "births": []}
        try:
            box_field = None
            if eval_key and eval_key != NO_EVAL:
                table = pd.video_table(dataset, eval_key)
                state["kind"] = table["kind"]
                data["videos"] = [{k: fmt(v) for k, v in row.items()} for row in table["rows"]]
                state["columns"] = table["columns"]
                if table["kind"] == "tracking":
                    box_field = dataset.get_evaluation_info(eval_key).config.pred_field[len("frames.") :]
                    data["errors"] = self._error_traces(pd.errors_over_time(dataset, eval_key))
                    tracks = pd.track_table(dataset, eval_key)
                elif table["kind"] == "poses":
                    config = dataset.get_evaluation_info(eval_key).config
                    if getattr(config, "kind", None) == "posetrack":
                        ap = pd.joint_ap(dataset, eval_key)
                        state["has_joints"] = True
                        data["joints"] = [{"type": "bar", "x": ap["joints"], "y": ap["ap"], "marker": {"color": "#0067A5"},
                                           "name": "AP (%)"}]  # fmt: skip
                    box_field = (getattr(config, "pred_box_field", None) or "")[len("frames.") :] or None
                    tracks = pd.track_table(dataset, field=box_field) if box_field else []
                else:
                    box_field = dataset.get_evaluation_info(eval_key).config.pred_field[len("frames.") :]
                    tracks = pd.track_table(dataset, field=box_field)
            else:
                from fiftyone_posetrack.fo.appconfig import tracked_fields

                boxes = [f for f in tracked_fields(dataset) if dataset.has_frame_field(f)
                         and dataset.get_field(f"frames.{f}").document_type.__name__ == "Detections"]  # fmt: skip
                box_field = boxes[0] if boxes else ("pred_detections" if dataset.has_frame_field("pred_detections") else None)
                tracks = pd.track_table(dataset, field=box_field) if box_field else []
                qkeys = pd.quality_keys(dataset)
                if qkeys:  # no evaluation: the track-quality flags judge the result instead
                    qkey = "quality" if "quality" in qkeys else qkeys[0]
                    state["quality_key"] = qkey
                    data["quality"] = [{**{k: fmt(v) for k, v in r.items()}, "_sample_id": r["sample_id"],
                                        "_frame": r["frame_number"]} for r in pd.quality_table(dataset, qkey)]  # fmt: skip
                    state["quality_rows"] = [(r["_sample_id"], r["_frame"]) for r in data["quality"]]
                    data["births"] = self._birth_traces(pd.quality_over_time(dataset, qkey))
                    if box_field:
                        flags = pd.quality_tracks(dataset, qkey, box_field)
                        for row in tracks:
                            row.update(flags.get((row["sample_id"], row["index"]), {}))
                        tracks.sort(key=lambda r: (r["video"], -sum(r.get(f, 0) for f in QUALITY_FLAGS), r["index"]))
            state["box_field"] = box_field
            state["track_rows"] = [(r["sample_id"], r["index"]) for r in tracks]
            state["videos"] = len(dataset)
            state["keypoints_field"] = _keypoints_field_for(dataset, box_field) if box_field else None
            data["tracks"] = [
                {**{k: fmt(v) for k, v in row.items()}, "_index": row["index"], "_sample_id": row["sample_id"]}
                for row in tracks
            ]
            data["runs"] = [
                {"key": r["key"], "type": r["type"], "timestamp": r["timestamp"][:19],
                 "what": self._run_summary(r["config"])}  # fmt: skip
                for r in pd.run_records(dataset)
            ]
        except BadInputError as e:
            state["error"] = str(e)
        ctx.panel.set_state("pt", state)
        for k, v in data.items():
            ctx.panel.set_data(k, v)

    @staticmethod
    def _run_summary(config: dict) -> str:
        keys = ("method", "kind", "pred_field", "gt_field", "detector", "pose_model", "reid_model", "tracker",
                "detections_field", "keypoints_field")  # fmt: skip
        parts = [f"{k}={config[k]}" for k in keys if config.get(k) not in (None, "", "evaluation")]
        models = config.get("models")
        if isinstance(models, dict):  # a run record of fiftyone_posetrack.fo.runs
            parts += [f"{role}={(m or {}).get('spec', m) if isinstance(m, dict) else m}" for role, m in models.items()]
        return "; ".join(parts) or ", ".join(sorted(config))[:120]

    @staticmethod
    def _error_traces(videos) -> list[dict]:
        traces = []
        for v in videos:
            for c in ("fp", "fn", "idsw"):
                traces.append({
                    "type": "scatter", "mode": "lines+markers",
                    "name": f"{ERROR_NAMES[c]}" + (f" ({v['video']})" if len(videos) > 1 else ""),
                    "x": v["frame_number"], "y": v[c],
                    "ids": [f"{v['sample_id']}:{n}" for n in v["frame_number"]],
                    "line": {"color": ERROR_COLORS[c], "width": 1.5}, "marker": {"size": 7},
                    "hovertemplate": f"frame %{{x}}: %{{y}} {ERROR_NAMES[c]}<extra></extra>",
                })  # fmt: skip
        return traces

    @staticmethod
    def _birth_traces(videos) -> list[dict]:
        traces = []
        for v in videos:
            suffix = f" ({v['video']})" if len(videos) > 1 else ""
            for c, color in (("births", "#008856"), ("deaths", "#BE0032")):
                traces.append({
                    "type": "bar", "name": f"track {c}{suffix}", "x": v["frame_number"], "y": v[c],
                    "marker": {"color": color}, "ids": [f"{v['sample_id']}:{n}" for n in v["frame_number"]],
                    "hovertemplate": f"frame %{{x}}: %{{y}} {c}<extra></extra>",
                })  # fmt: skip
        return traces

    # ------------------------------------------------------------------ events

    def on_click_quality(self, ctx):
        """Opens the clicked flagged frame's video at that frame."""
        from fiftyone_posetrack.fo.views import open_at_frame

        rows = (ctx.panel.get_state("pt") or {}).get("quality_rows") or []
        try:
            sample_id, frame = rows[int(ctx.params.get("row"))]
            clip_view, clip_id = open_at_frame(ctx.dataset, sample_id, int(frame))
        except (BadInputError, IndexError, TypeError, ValueError) as e:
            ctx.ops.notify(f"cannot open that frame: {e}", variant="error")
            return
        ctx.panel.set_state("pending_open", clip_id)
        ctx.panel.set_state("opened", {"sample_id": sample_id, "frame": int(frame), "clip_id": clip_id})
        ctx.ops.set_view(view=clip_view)

    def on_load(self, ctx):
        choices = self._choices(ctx)
        current = (ctx.panel.get_state("pt") or {}).get("eval_key")
        key = current if current in choices else (choices[0] if choices else NO_EVAL)
        ctx.panel.set_state("eval_key", key)
        self._load(ctx, key)

    def on_change_dataset(self, ctx):
        ctx.panel.set_state("pt", None)
        self.on_load(ctx)

    def on_change_eval(self, ctx):
        value = ctx.params.get("value") or NO_EVAL
        if value != (ctx.panel.get_state("pt") or {}).get("eval_key"):  # the dropdown may echo the current value
            self._load(ctx, value)

    def on_click_error(self, ctx):
        """Opens the clicked point's video at its frame (a clip from that frame to the end)."""
        from fiftyone_posetrack.fo.views import open_at_frame

        point = ctx.params.get("id") or ""
        sample_id, _, frame = str(point).partition(":")
        if not frame and ctx.params.get("x") is not None:  # a single video: the x value is the frame
            frame, sample_id = ctx.params["x"], (ctx.panel.get_state("pt") or {}).get("sample_id", "")
        try:
            clip_view, clip_id = open_at_frame(ctx.dataset, sample_id, int(frame))
        except (BadInputError, ValueError) as e:
            ctx.ops.notify(str(e), variant="error")
            return
        # the modal opens once the App shows the clip (on_change_view): opening it now
        # would look the clip up in the old view; the clicked kind of error is then selected
        # (highlighted) in the modal
        ctx.panel.set_state("pending_select", self._clicked_labels(ctx, sample_id, int(frame), clip_id))
        ctx.panel.set_state("pending_open", clip_id)
        ctx.panel.set_state("opened", {"sample_id": sample_id, "frame": int(frame), "clip_id": clip_id})
        ctx.ops.set_view(view=clip_view)

    def on_change_view(self, ctx):
        pending = ctx.panel.get_state("pending_open")
        if pending:
            ctx.panel.set_state("pending_open", None)
            ctx.ops.open_sample(id=pending)
            labels = ctx.panel.get_state("pending_select")
            if labels:
                ctx.panel.set_state("pending_select", None)
                ctx.ops.set_selected_labels(labels)

    @staticmethod
    def _clicked_labels(ctx, sample_id: str, frame: int, clip_id: str) -> list[dict]:
        """The boxes of the clicked point's kind of error in that frame (the App highlights selected labels).

        False positives: the predicted boxes marked ``fp``; misses: the ground-truth
        boxes marked ``fn``; ID switches: the boxes marked as switches.
        """
        from fiftyone_posetrack.fo.labels import frame_documents

        trace = str(ctx.params.get("trace") or "")
        kind = next((c for c, name in ERROR_NAMES.items() if trace.startswith(name)), None)
        key = (ctx.panel.get_state("pt") or {}).get("eval_key")
        if kind is None or not key or key == NO_EVAL:
            return []
        try:
            config = ctx.dataset.get_evaluation_info(key).config
        except Exception:  # not an evaluation any more
            return []
        pred, gt = config.pred_field[len("frames.") :], config.gt_field[len("frames.") :]
        wanted = {"fp": [(pred, lambda d: d.get(key) == "fp")], "fn": [(gt, lambda d: d.get(key) == "fn")],
                  "idsw": [(pred, lambda d: bool(d.get(f"{key}_idsw"))), (gt, lambda d: bool(d.get(f"{key}_idsw")))]}[kind]  # fmt: skip
        labels = []
        for doc in frame_documents(ctx.dataset, sample_id, [pred, gt]):
            if doc["frame_number"] != frame:
                continue
            for field, match in wanted:
                for d in (doc.get(field) or {}).get("detections") or []:
                    if match(d):
                        labels.append({"label_id": str(d["_id"]), "sample_id": clip_id, "field": f"frames.{field}",
                                       "frame_number": frame})  # fmt: skip
        return labels

    def on_click_track(self, ctx):
        """Shows only the clicked track's boxes and skeletons."""
        from fiftyone_posetrack.fo.views import show_track

        row = ctx.params.get("row")
        tracks = self._tracks(ctx)  # panel data is write-only: recompute (same order as shown)
        state = ctx.panel.get_state("pt") or {}
        try:
            track = tracks[int(row)]
            # a clip from the track's first to its last frame: the modal opens at its first frame
            view = show_track(ctx.dataset, track["_index"], state.get("box_field"), state.get("keypoints_field"),
                              sample_id=track["_sample_id"], clip=True)  # fmt: skip
        except (BadInputError, IndexError, TypeError, ValueError) as e:
            ctx.ops.notify(f"cannot show that track: {e}", variant="error")
            return
        ctx.ops.set_view(view=view)
        ctx.panel.set_state("shown_track", {"index": track["_index"], "sample_id": track["_sample_id"]})

    def _tracks(self, ctx):
        from fiftyone_posetrack.fo import panel_data as pd

        state = ctx.panel.get_state("pt") or {}
        if state.get("track_rows") is not None:  # the order shown
            return [{"_index": i, "_sample_id": sid} for sid, i in state["track_rows"]]
        key = state.get("eval_key")
        if state.get("kind") == "tracking":
            rows = pd.track_table(ctx.dataset, key)
        elif state.get("box_field"):
            rows = pd.track_table(ctx.dataset, field=state["box_field"])
        else:
            rows = []
        return [{"_index": r["index"], "_sample_id": r["sample_id"]} for r in rows]

    def on_show_all(self, ctx):
        ctx.ops.clear_view()
        ctx.panel.set_state("shown_track", None)

    # ------------------------------------------------------------------ layout

    def render(self, ctx):
        panel = types.Object()
        state = ctx.panel.get_state("pt") or {}
        choices = self._choices(ctx) + [NO_EVAL]
        dropdown = types.DropdownView(label="Evaluation")
        for c in choices:
            dropdown.add_choice(c, label=c)
        panel.enum("eval_key", choices, default=state.get("eval_key") or choices[0], view=dropdown,
                   on_change=self.on_change_eval)  # fmt: skip
        if state.get("error"):
            panel.view("error", types.Notice(label=state["error"]))
            return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, pad=2))
        kind = state.get("kind")
        if kind:
            cols = [("video", "Video")] + [(c, METRIC_LABELS.get(c, c)) for c in state.get("columns", [])
                                           if c not in ("precision", "recall")]  # fmt: skip
            panel.md(f"**Per video** ({kind} evaluation `{state.get('eval_key')}`)", name="videos_title")
            _table(panel, "videos", cols)
        if kind == "tracking":
            panel.md("**Errors over time**: click a point to open that video at that frame", name="errors_title")
            panel.plot(
                "errors", on_click=self.on_click_error,
                # the legend below the axis (above it, it was cut off by the top margin); hover labels
                # with the whole trace name, inside the plot
                layout={"height": 300, "xaxis": {"title": {"text": "frame"}}, "hovermode": "closest",
                        "yaxis": {"title": {"text": "count"}, "rangemode": "tozero", "dtick": 1},
                        "showlegend": True, "legend": {"orientation": "h", "x": 0, "y": -0.3},
                        "hoverlabel": {"namelength": -1, "align": "left"},
                        "margin": {"t": 10, "b": 90, "l": 50, "r": 20}},
                config={"displayModeBar": False},
            )  # fmt: skip
        if kind == "poses" and state.get("has_joints"):
            panel.md("**PoseTrack AP per joint** (%)", name="joints_title")
            panel.plot("joints", layout={"height": 280, "yaxis": {"range": [0, 100]}, "margin": {"t": 20, "b": 90, "l": 50, "r": 10}},
                       config={"displayModeBar": False})  # fmt: skip
        if state.get("quality_key"):
            qkey = state["quality_key"]
            panel.md(
                f"**Track quality** (no ground truth; `{qkey}_*` fields): the top flagged frames, best first, "
                "one per incident. Click a row to open that video at that frame. Flags: fragment (a track ends "
                "and another starts nearby within a second), jump (beyond the motion gate), drift (appearance, "
                "with a ReID model), low confidence (a stretch), skeleton (implausible limbs or left/right swap).",
                name="quality_title",
            )
            cols = [("video", "Video")] if state.get("videos", 1) > 1 else []
            cols += [("frame_number", "Frame"), ("score", "Score"), ("flags", "Flags"), ("births", "Births"),
                     ("deaths", "Deaths")]  # fmt: skip
            _table(panel, "quality", cols, on_click_row=self.on_click_quality)
            panel.md("**Track births and deaths over time**", name="births_title")
            panel.plot(
                "births",
                layout={"height": 220, "barmode": "group", "xaxis": {"title": {"text": "frame"}},
                        "yaxis": {"title": {"text": "tracks"}, "rangemode": "tozero"}, "showlegend": True,
                        "legend": {"orientation": "h", "y": -0.35}, "margin": {"t": 10, "b": 70, "l": 50, "r": 10}},
                config={"displayModeBar": False},
            )  # fmt: skip
        if state.get("box_field"):
            panel.md(
                f"**Tracks** of `{state['box_field']}`: click a row to show only that track's boxes"
                + (f" and skeletons (`{state['keypoints_field']}`)" if state.get("keypoints_field") else ""),
                name="tracks_title",
            )
            cols = [("video", "Video")] if state.get("videos", 1) > 1 else []
            cols += [("index", "Track"), ("length", "Frames"), ("first", "From"), ("last", "To"), ("gaps", "Gaps"),
                     ("mean_confidence", "Conf.")]  # fmt: skip
            if kind == "tracking":
                cols += [("gt_ids", "GT ids"), ("switches", "ID sw."), ("fp", "FP")]
            elif state.get("quality_key"):
                cols += [(f, QUALITY_FLAG_LABELS[f]) for f in QUALITY_FLAGS]
            _table(panel, "tracks", cols, on_click_row=self.on_click_track)
            shown = ctx.panel.get_state("shown_track")
            if shown:
                panel.btn("show_all", label=f"Track {shown['index']} shown: show all tracks", on_click=self.on_show_all,
                          variant="outlined")  # fmt: skip
        panel.md("**Runs** that wrote these labels", name="runs_title")
        _table(panel, "runs", [("key", "Key"), ("type", "Type"), ("timestamp", "When (UTC)"), ("what", "Config")])
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, pad=2))
