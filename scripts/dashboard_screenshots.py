"""Take the five dashboard screenshots of docs/screenshots/ from a demo lab.

    python3 -m labkit demo demo-lab --no-serve      # once: builds the lab and runs its matrix
    python3 scripts/dashboard_screenshots.py demo-lab docs/screenshots

Serves the dashboards on the lab (Voilà, preheated kernels), loads each page in Debian's Chromium
through Playwright and saves home.png, browse.png, matrix.png, prediction.png and compare.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

import labkit
from labkit.dashboards.serve import DashboardServer

VIEWPORT = {"width": 1280, "height": 1000}


def main(lab_dir: str = "demo-lab", out_dir: str = "docs/screenshots") -> None:
    from playwright.sync_api import sync_playwright
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with labkit.Lab.open(lab_dir) as lab:
        runs = [r for r in lab.runs(protocol="steady_pacing") if r.status == "success"]
        if not runs:
            raise SystemExit(f"{lab_dir} has no steady_pacing predictions: run `python3 -m labkit demo {lab_dir} --no-serve`")
        prediction = next((r for r in runs if r.model == "beeler_reuter_1977"), runs[0])
        pages = {
            "home": "home.ipynb",
            "browse": "browse.ipynb?kind=protocol&name=steady_pacing",
            "matrix": "matrix.ipynb",
            "prediction": f"prediction.ipynb?run={prediction.id}",
            "compare": "compare.ipynb?protocol=steady_pacing&runs=" + ",".join(r.id for r in runs),
        }
        settings = lab.settings
    with DashboardServer(settings, log=Path(lab_dir) / "logs" / "screenshots-voila.log") as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for name, url in pages.items():
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(server.page_url(url), wait_until="commit", timeout=180_000)
                page.wait_for_selector(".lk-nav", timeout=180_000)
                if name in ("prediction", "compare"):
                    page.wait_for_selector("img.lk-plot, img.lk-compare-figure", timeout=60_000)
                page.wait_for_timeout(1500)  # let the last widgets settle (fonts, images)
                page.screenshot(path=out / f"{name}.png")  # Voila scrolls inside the page: the viewport is the shot
                print(out / f"{name}.png")
                page.close()
        finally:
            browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
