"""The FiftyOne App in a real browser: run the whole pose tracking from the operator browser.

Chromium (Debian's, ``/usr/bin/chromium``) is driven by Playwright; set it up
with ``bash scripts/setup_browser.sh``. The test skips only where Chromium or
Playwright is not installed.

It opens the App on a synthetic crowd video, opens the operator browser with
the backtick key, runs "run the whole pose tracking" immediately (not
delegated), checks that the tracked frame fields appear in the sidebar and
the dataset, opens the video in the modal and screenshots the tracked
skeletons (pytest's tmp dir; with ``POSETRACK_UPDATE_DOC_IMAGES=1`` also
``docs/img/app_skeletons.png``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import time

import pytest

import fiftyone as fo

from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.plugin import install_plugin
from fiftyone_posetrack.pipeline.options import OPTIONS
from fiftyone_posetrack.synth import render_crowd

try:
    from playwright.sync_api import expect
except ImportError:  # the playwright fixture skips the tests
    expect = None

CHROMIUM = os.environ.get("POSETRACK_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
DOC_IMAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "img" / "app_skeletons.png"

pytestmark = pytest.mark.browser


def _dismiss_popover(page) -> None:
    """Closes the App's "Explore Enterprise" popover (its backdrop swallows clicks) if it shows."""
    try:
        page.get_by_text("Dismiss", exact=True).first.click(timeout=5_000)
    except Exception:  # playwright's TimeoutError: no popover this time
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(session, timeout: float = 180.0) -> None:
    """Waits until the App server delivers the App's events to this Python ``fo.Session``.

    FiftyOne's session client subscribes to its App server from a thread: it
    pings the server for up to 10 s, then retries every 10 s, while
    ``fo.launch_app`` returns as soon as the server is up. On busy cores the
    subscription can come after the page has loaded: until then the App's view
    changes never reach ``session.view``, and the late subscription resets the
    App to the session's initial state (CI: "timed out waiting for the
    session's view to be the clip"). So a probe event (an empty label
    selection, posted as another subscriber) is sent until the session's own
    listener receives it.
    """
    import threading

    import requests

    received = threading.Event()

    def listener(_event):
        received.set()

    session._client.add_event_listener("select_labels", listener)
    probe = {"event": "select_labels", "data": {"labels": []}, "subscription": "posetrack-test-probe"}
    deadline = time.time() + timeout
    try:
        while not received.is_set():
            if time.time() > deadline:
                raise AssertionError(f"the Python session did not subscribe to its App server in {timeout:.0f} s")
            try:
                requests.post(f"http://127.0.0.1:{session.server_port}/event", json=probe, timeout=10)
            except requests.RequestException:  # the server is still starting
                pass
            received.wait(1.0)
    finally:
        session._client.remove_event_listener("select_labels", listener)


@pytest.fixture(scope="module")
def playwright():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: run `bash scripts/setup_browser.sh` (needs root for apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: run `bash scripts/setup_browser.sh`")
    with sync_playwright() as p:
        yield p


@pytest.fixture()
def app(shared_dir, tmp_path, monkeypatch):
    # the App server is a child process: it inherits the plugins dir and the models dir
    monkeypatch.setenv("POSETRACK_MODELS_DIR", str(shared_dir / "models"))
    install_plugin(fo.config.plugins_dir)
    crowd = render_crowd(tmp_path / "crowd", people=5, frames=24, width=480, height=272, seed=3)
    dataset = load_synth(crowd.out_dir, "browser-crowd", overwrite=True)
    dataset.app_config.color_scheme = fo.ColorScheme(  # one vivid colour per track
        color_by="instance", color_pool=["#ff2020", "#20ff40", "#20c8ff", "#ffee00", "#ff40ff", "#9090ff", "#ff9900"]
    )
    dataset.save()
    port = _free_port()
    session = fo.launch_app(dataset, remote=True, port=port, address="127.0.0.1")
    _wait_listening(session)
    try:
        yield dataset, f"http://127.0.0.1:{port}"
    finally:
        session.close()
        dataset.delete()


def test_run_pose_tracking_from_the_operator_browser(playwright, app, tmp_path):
    dataset, url = app
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/datasets/{dataset.name}", wait_until="domcontentloaded")
        expect(page.get_by_text("frames.gt_keypoints").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("frames.pred_keypoints")).to_have_count(0)
        _dismiss_popover(page)

        # the operator browser, then our operator's form
        page.keyboard.press("`")
        page.keyboard.type("whole pose tracking")
        page.get_by_text("Pose tracking: run the whole pose tracking").first.wait_for(timeout=20_000)
        page.keyboard.press("Enter")
        page.get_by_text("Tracked person boxes and skeletons for every frame").wait_for(timeout=20_000)
        expect(page.locator("input[value='rtmdet-nano-person']")).to_have_count(1)  # form defaults from PipelineConfig

        reid = page.locator(f"input[role=combobox][value='{OPTIONS['reid'].default}']")  # motion only: faster
        reid.fill("none")
        page.get_by_role("option", name="none").first.click()

        # immediate execution, not the delegated queue
        page.locator("button[aria-haspopup=menu]:has([data-testid=ArrowDropDownIcon])").last.click()
        page.get_by_text("Run this operation synchronously").click()
        start = time.time()
        page.get_by_role("button", name="Execute").click()
        page.get_by_text("Frames processed").wait_for(timeout=120_000)
        ran = time.time() - start
        page.get_by_text("frames.pred_keypoints").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Close").click()

        dataset.reload()
        assert dataset.count("frames.pred_keypoints.keypoints") > 24
        assert dataset.values("pred_detections_status") == ["done"]
        assert dataset.distinct("frames.pred_detections.detections.index"), "tracked: boxes carry track ids"

        # a fresh page (the grid's state predates the new fields), open the video, show only predictions
        page.reload(wait_until="domcontentloaded")
        page.get_by_text("frames.pred_keypoints").first.wait_for(timeout=60_000)
        _dismiss_popover(page)
        page.locator("[data-cy=looker] canvas[canvas-loaded=true]").first.wait_for(timeout=30_000)
        page.locator("[data-cy=looker]").first.click()
        page.get_by_text("metadata.total_frame_count").wait_for(timeout=30_000)
        for field in ("frames.gt_detections", "frames.gt_keypoints"):
            page.locator(f"[data-cy='checkbox-{field}']").last.click()  # the modal's sidebar
        page.mouse.move(500, 400)
        for _ in range(12):  # to frame 13: every track is confirmed by then
            page.keyboard.press(".")
            time.sleep(0.2)
        time.sleep(3)
        shot = tmp_path / "app_skeletons.png"
        page.screenshot(path=str(shot))
        if os.environ.get("POSETRACK_UPDATE_DOC_IMAGES") == "1":  # refresh the README's picture
            DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, DOC_IMAGE)
        assert shot.stat().st_size > 20_000
        print(f"\npose tracking ran in the App in {ran:.1f} s; screenshot {shot} -> {DOC_IMAGE}")
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))  # what the App showed
        raise
    finally:
        browser.close()


# --------------------------------------------------------------------------- the Pose tracking panel

PANEL_IMAGES = {
    "panel": "app_panel.png",
    "frame": "app_panel_opens_frame.png",
    "track": "app_panel_one_track.png",
    "model_eval": "app_model_evaluation_panel.png",
}


@pytest.fixture()
def evaluated_app(shared_dir, tmp_path, fo_home):
    """A tracked and evaluated crowd video (tests/tracked.py), our colour scheme, the App on it."""
    from fiftyone_posetrack.fo.appconfig import apply_track_colors
    from tracked import make_tracked

    install_plugin(fo.config.plugins_dir)
    dataset = make_tracked(tmp_path, name=f"browser-panel-{tmp_path.name[-6:]}", persistent=True)
    apply_track_colors(dataset, ["pred_detections", "pred_keypoints"])  # what a pipeline run sets
    port = _free_port()
    session = fo.launch_app(dataset, remote=True, port=port, address="127.0.0.1")
    _wait_listening(session)
    try:
        yield dataset, session, f"http://127.0.0.1:{port}"
    finally:
        session.close()
        dataset.delete()


def _shot(page, tmp_path, key) -> pathlib.Path:
    shot = tmp_path / PANEL_IMAGES[key]
    page.screenshot(path=str(shot))
    if os.environ.get("POSETRACK_UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOC_IMAGE.parent / PANEL_IMAGES[key])
    return shot


def _sidebar_count(page, field) -> int:
    """The label count the modal's sidebar shows for a frame field (the labels the App loaded to draw)."""
    entry = page.locator(f"[data-cy=modal] [data-cy='sidebar-field-container-{field}']").first
    text = entry.inner_text(timeout=20_000)
    try:
        return int(text.split()[-1].replace(",", ""))
    except ValueError:  # the count is not loaded yet
        return -1


def _close_modal(page) -> None:
    """Escape until the modal is gone (the first press may only leave the video's focus)."""
    modal = page.locator("[data-cy=modal]")
    for i in range(6):
        if modal.count() == 0:
            return
        if i % 2:
            page.mouse.click(12, 600)  # the backdrop left of the modal
        else:
            page.keyboard.press("Escape")
        time.sleep(1.5)
    expect(modal).to_have_count(0, timeout=10_000)  # the modal closed


def _wait(predicate, timeout=30.0, what=""):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _click_until(locator, predicate, what, tries=3, timeout=20.0):
    """Clicks until ``predicate`` holds: a click that lands while the panel re-renders is dropped,
    and while it re-renders the element may be gone for a while (seen on a cold CI machine: the
    track row was replaced just after it was checked, and the click waited 30 s for it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        try:
            locator.click(timeout=30_000)  # the locator is resolved again on each try
            return _wait(predicate, timeout=timeout, what=what)
        except (AssertionError, PlaywrightTimeout):
            if attempt == tries - 1:
                raise


def _open_panel(page, text, tries=3):
    """Opens the Pose tracking panel from the "+" of the spaces and waits for ``text`` in it.

    On a cold App the menu click can land before the spaces are ready and open nothing
    (seen in CI: no panel after 60 s); the menu is opened again then.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    panel = page.locator("[data-cy=panel-content-pose_tracking_panel]")
    for attempt in range(tries):
        try:
            if not panel.count():
                page.locator("[data-cy=new-panel-btn]").first.click(timeout=30_000)
                page.get_by_text("Pose tracking", exact=True).first.click(timeout=30_000)
            panel.get_by_text(text).first.wait_for(timeout=60_000)
            return panel
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")  # close a menu left open


def test_pose_tracking_panel(playwright, evaluated_app, tmp_path):
    from fiftyone_posetrack.fo.panel_data import track_table

    dataset, session, url = evaluated_app
    tracks = track_table(dataset, "track_eval")
    first = tracks[0]  # most ID switches first
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 1800, "height": 1100})
        page.goto(f"{url}/datasets/{dataset.name}", wait_until="domcontentloaded")
        page.get_by_text("frames.pred_keypoints").first.wait_for(timeout=60_000)
        _dismiss_popover(page)

        # open the panel from the "+" of the spaces
        panel = _open_panel(page, "Errors over time")
        expect(panel.get_by_text("0.883").first).to_be_visible(timeout=60_000)  # per-video MOTA with 3 decimals
        switch_point = panel.locator(".js-plotly-plot .scatterlayer .trace").nth(2).locator("path.point").nth(11)
        switch_point.wait_for(state="visible", timeout=30_000)
        time.sleep(2)
        _shot(page, tmp_path, "panel")

        # choose a track: only its boxes and skeletons remain
        tracks_table = panel.locator("table").nth(1)
        expect(tracks_table.locator("thead")).to_contain_text("ID sw.", timeout=30_000)  # the evaluation's tracks
        expect(tracks_table.locator("tbody tr").first.locator("td").first).to_have_text(str(first["index"]), timeout=30_000)
        _click_until(
            tracks_table.locator("tbody tr").first,
            lambda: session.view is not None and "FilterLabels" in repr(session.view),
            what="the track's view",
        )
        assert session.view.distinct("frames.pred_detections.detections.index") == [first["index"]]
        assert session.view.distinct("frames.pred_keypoints.keypoints.index") == [first["index"]]
        page.locator("[data-cy=looker] canvas[canvas-loaded=true]").first.wait_for(timeout=60_000)
        page.locator("[data-cy=looker]").first.click()
        page.locator("[data-cy=modal]").first.wait_for(timeout=30_000)
        _wait(lambda: _sidebar_count(page, "frames.pred_detections") == first["length"], what="the track's box count")
        n_kps = dataset.count_values("frames.pred_keypoints.keypoints.index")[first["index"]]
        _wait(lambda: _sidebar_count(page, "frames.pred_keypoints") == n_kps, what="the track's skeleton count")
        n_gt = dataset.count("frames.gt_detections.detections")
        _wait(lambda: _sidebar_count(page, "frames.gt_detections") == n_gt, what="ground truth untouched")
        page.mouse.move(600, 500)
        time.sleep(3)
        _shot(page, tmp_path, "track")
        _close_modal(page)

        # click the ID-switch point of frame 12: the modal opens that video at frame 12 (0.44 s at 25 fps)
        for attempt in range(3):  # a click that lands while the panel re-renders is dropped: click again
            switch_point.click(force=True)
            try:
                page.locator("[data-cy=modal]").first.wait_for(timeout=30_000)
                page.get_by_text("0:00.44").first.wait_for(timeout=30_000)
                break
            except Exception:  # playwright's TimeoutError
                if attempt == 2:
                    page.screenshot(path=str(tmp_path / "failure.png"))
                    raise
                _close_modal(page)
        _wait(lambda: "ToClips" in repr(session.view), what="the clip view")
        assert session.view.first().support == [12, 24]
        page.mouse.move(600, 500)
        time.sleep(3)
        _shot(page, tmp_path, "frame")
        _close_modal(page)

        # FiftyOne's Model Evaluation panel opens our tracking evaluation without an error
        page.locator("[data-cy=new-panel-btn]").last.click()
        page.get_by_text("Model Evaluation", exact=True).first.click()
        page.get_by_text("track_eval", exact=True).last.click(timeout=60_000)
        page.get_by_text("MOTA").first.wait_for(timeout=60_000)  # our metrics, as its custom metrics
        time.sleep(3)
        _shot(page, tmp_path, "model_eval")
        expect(page.get_by_text("Operator Error")).to_have_count(0)
        expect(page.get_by_text("object has no attribute")).to_have_count(0)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))
        raise
    finally:
        browser.close()
