"""The live page in a real headless Chromium with a fake camera playing a clip made from a sample photo.

Set HIDA_SERVE_SCREENSHOT=docs/serve-page.png to save a screenshot of the page while it runs.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("mediapipe", reason="the live stream needs the face extra (MediaPipe 0.10.21)")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory, y4m):
    """3 s at 15 fps, 640x480: the astronaut sample drifting over a wall (Chromium loops it)."""
    from testutils.synthetic_video import moving_face_frames

    return y4m(tmp_path_factory.mktemp("camera") / "face.y4m", moving_face_frames(45, 640, 480), fps=15)


@pytest.fixture(scope="module")
def browser(camera_clip):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_clip}", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


GREY_FRACTION = """(id) => {
  let source = document.getElementById(id);
  const c = document.createElement('canvas');
  const w = c.width = source.videoWidth || source.width, h = c.height = source.videoHeight || source.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(source, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h).data;
  let grey = 0, sum = 0, sum2 = 0, n = w * h;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if (Math.abs(r - g) < 10 && Math.abs(g - b) < 10) grey++;
    const y = (r + g + b) / 3; sum += y; sum2 += y * y;
  }
  const mean = sum / n;
  return {w, h, grey: grey / n, std: Math.sqrt(sum2 / n - mean * mean)};
}"""


def test_the_page_shows_the_live_sketch_of_the_camera(server, browser, sample_pair):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(server.url + "/", timeout=WAIT_MS)
        page.wait_for_function("() => window.hidaStats && window.hidaStats.drawn >= 3", timeout=WAIT_MS)
        stats = page.evaluate("() => window.hidaStats")
        assert stats["connected"] and stats["faces"] == 1 and stats["fps"] > 0, stats
        assert float(page.inner_text("#fps")) > 0
        assert float(page.inner_text("#latency")) > 0  # frame sent -> sketch shown, measured at the page
        camera, sketch = page.evaluate(GREY_FRACTION, "camera"), page.evaluate(GREY_FRACTION, "sketch")
        assert (sketch["w"], sketch["h"]) == (camera["w"], camera["h"]) == (640, 480)
        assert sketch["std"] > 10  # not blank
        # Not the camera image: the face is redrawn in grey pencil (the clip has no grey of its own).
        assert camera["grey"] < 0.05 and sketch["grey"] > camera["grey"] + 0.05, (camera, sketch)
        # Style control: the server acknowledges the change.
        page.check("input[name=style][value='3']")
        page.wait_for_function("() => document.getElementById('status').textContent.includes('style s3')", timeout=WAIT_MS)
        drawn = page.evaluate("() => window.hidaStats.drawn")
        page.wait_for_function(f"() => window.hidaStats.drawn > {drawn + 1}", timeout=WAIT_MS)
        if os.environ.get("HIDA_SERVE_SCREENSHOT"):
            page.screenshot(path=os.environ["HIDA_SERVE_SCREENSHOT"])
        # The upload form sketches one photo.
        page.set_input_files("input[name=photo]", str(sample_pair[0]))
        page.set_input_files("input[name=depth]", str(sample_pair[1]))
        page.click("#upload button[type=submit]")
        page.wait_for_function("() => document.getElementById('result').naturalWidth === 256", timeout=WAIT_MS)
        assert page.inner_text("#upload-status").startswith("done in")
        assert not errors, errors
    finally:
        page.close()


def test_the_page_asks_for_the_api_key_once_and_streams_with_it(keyed, browser):
    page = browser.new_page()
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept(keyed.api_key)

    page.on("dialog", answer)
    try:
        page.goto(keyed.url + "/", timeout=WAIT_MS)  # 127.0.0.2: loopback, so still a secure context
        page.wait_for_function("() => window.hidaStats && window.hidaStats.drawn >= 1", timeout=WAIT_MS)
        assert asked == ["This sketch server needs its API key:"]
        page.reload(timeout=WAIT_MS)  # the key is kept for the browser session: not asked again
        page.wait_for_function("() => window.hidaStats && window.hidaStats.drawn >= 1", timeout=WAIT_MS)
        assert len(asked) == 1
    finally:
        page.close()
