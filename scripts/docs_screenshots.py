"""Screenshots of the built docs site with headless Chromium: docs/img/site_landing.png, site_api.png.

    mkdocs build --strict -d /tmp/site
    python scripts/docs_screenshots.py /tmp/site            # writes docs/img/site_*.png

Serves the site on a loopback port and drives Chromium through playwright (as the App test does:
``/usr/bin/chromium``, or playwright's own; ``bash scripts/setup_browser.sh`` installs it).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import shutil
import threading

REPO = pathlib.Path(__file__).resolve().parent.parent

PAGES = {"site_landing.png": "", "site_api.png": "api/running/"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=pathlib.Path, help="the built site (mkdocs build -d SITE)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "img")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site} holds no built site (index.html); run mkdocs build -d {args.site} first")

    from playwright.sync_api import sync_playwright

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    chromium = shutil.which("chromium")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            ) if chromium else p.chromium.launch(args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            for name, path in PAGES.items():
                page.goto(base + path, wait_until="networkidle")
                page.wait_for_selector("article h1")
                page.screenshot(path=str(args.out / name))
                print(f"wrote {args.out / name} ({base + path})")
            browser.close()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
