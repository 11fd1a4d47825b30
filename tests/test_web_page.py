"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright): connect with a client key, click
a street, and see an estimate with its radii; the screenshot is kept in out/test-artifacts/web_page.png."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from deploy_spec import SMALL_DEPLOYMENT

from radioloc.deploy.deployment import DeploymentStore
from radioloc.service.app import Settings, create_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "out" / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(deployment_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("web")
    (home / "deployments").mkdir()
    (home / "deployments" / SMALL_DEPLOYMENT.id).symlink_to(deployment_home / "deployments" / SMALL_DEPLOYMENT.id)
    app = create_app(Settings(home=home, run_jobs=False))
    _, client = app.state.radioloc.db.create_key("page", "client", SMALL_DEPLOYMENT.id)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", client
    server.should_exit = True
    thread.join(10)


def test_a_click_on_the_map_shows_an_estimate(served, deployment_home):
    playwright = pytest.importorskip("playwright.sync_api")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser_path, "Debian's chromium is needed for the web page test (apt-get install chromium)"
    url, key = served
    deployment = DeploymentStore(deployment_home).load(SMALL_DEPLOYMENT.id)
    obstacles = np.asarray(deployment.obstacles)
    # a street pixel that hears several BSs, clicked through the canvas's scale (720 px for 512 m)
    heard = (np.asarray(deployment.truth) > 0).sum(axis=0)
    candidates = np.argwhere((obstacles == 0) & (heard >= 4))
    row, col = candidates[len(candidates) // 2]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/?key={key}")
        page.wait_for_function("document.getElementById('status').textContent.includes('Click the map')", timeout=30_000)
        canvas = page.locator("#map")
        box = canvas.bounding_box()
        scale = box["width"] / 512
        canvas.click(position={"x": (col + 0.5) * scale, "y": (row + 0.5) * scale})
        page.wait_for_selector("#estimate", timeout=60_000)
        text = page.locator("#estimate").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web_page.png"), full_page=True)
        reports = page.locator("#reports").input_value()
        browser.close()
    assert errors == []
    assert "68 % radius" in text and "95 % radius" in text and "error" in text
    # the page asked the service for the reports at the clicked point (within a pixel: the canvas has a border)
    nearby = {f"{r[0]['cellId']},{r[0]['signalStrength']}" for dr in (-1, 0, 1) for dc in (-1, 0, 1)
              if not obstacles[row + dr, col + dc] and (r := deployment.reports_at(row + dr, col + dc))}  # fmt: skip
    assert reports.splitlines()[0] in nearby
    assert (ARTIFACTS / "web_page.png").stat().st_size > 20_000
