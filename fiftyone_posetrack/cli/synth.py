"""``posetrack synth``: render a synthetic crowd video with exact ground truth."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="render a synthetic crowd video with exact MOT and PoseTrack ground truth",
        description=(
            "Renders articulated people walking across a tiled floor, crossing and "
            "occluding each other, and writes OUT_DIR/video.mp4 (H.264), gt/gt.txt "
            "(MOT ground truth with exact visibility), posetrack.json (PoseTrack18, "
            "COCO-17 joints) and seqinfo.ini. The same seed gives the same files."
        ),
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (must be empty or new)")
    p.add_argument("--people", type=int, default=12, help="number of people (default 12)")
    p.add_argument("--frames", type=int, default=150, help="number of frames (default 150)")
    p.add_argument("--width", type=int, default=640, help="frame width, even, >= 64 (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height, even, >= 64 (default 360)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fps", type=float, default=25.0, help="frames per second (default 25)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs in a non-empty OUT_DIR")
    p.add_argument("--images", action="store_true", help="also write JPEG frames to OUT_DIR/img1/")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fiftyone_posetrack.synth import render_crowd

    result = render_crowd(
        args.out_dir,
        people=args.people,
        frames=args.frames,
        width=args.width,
        height=args.height,
        seed=args.seed,
        fps=args.fps,
        overwrite=args.overwrite,
        save_images=args.images,
        progress=not args.no_progress,
    )
    vis = result.mot[:, 8]
    mean_vis = float(vis.mean()) if len(vis) else float("nan")
    print(f"wrote {result.out_dir}")
    size = f"{result.width}x{result.height}"
    print(f"  video      {result.video_path} ({result.frames} frames, {size}, {result.fps:g} fps)")
    print(f"  gt         {result.gt_path} ({len(result.mot)} boxes, {result.people} people)")
    print(f"  posetrack  {result.posetrack_path}")
    print(f"  mean visibility {mean_vis:.3f}, {int((vis < 0.5).sum())} boxes less than half visible")
    print(
        f"  rendered at {result.render_fps:.0f} frames/s "
        f"({result.frames / max(result.total_seconds, 1e-9):.0f} frames/s with encoding)"
    )
    return 0
