"""The service core and settings without a server: the face extra missing (501), style text, host names, limits."""
from __future__ import annotations

import sys

import pytest

from hida_rt.errors import InputError
from hida_rt.serve.core import SketchService, parse_style
from hida_rt.serve.errors import BadRequest, NotInstalled, status_of
from hida_rt.serve.settings import Settings, is_loopback_name


def unloaded_service() -> SketchService:
    def never():
        raise AssertionError("the backend is not needed here")
    return SketchService(never, Settings())


@pytest.mark.parametrize("blocked", ["mediapipe", "cv2"])
def test_without_the_face_extra_a_photo_alone_is_501_with_the_install_command(monkeypatch, sample_pair, blocked):
    from hida_rt.styles import one_hot

    monkeypatch.setitem(sys.modules, blocked, None)  # importing it now fails
    service = unloaded_service()
    with pytest.raises(NotInstalled) as info:
        service.prepare(sample_pair[0].read_bytes(), None, one_hot(2))
    assert status_of(info.value) == 501
    assert "face extra" in str(info.value) and "pip install --no-deps mediapipe==0.10.21" in str(info.value)
    with pytest.raises(NotInstalled, match="live stream needs the face extra"):
        service.open_stream()
    # With a depth map the face extra is not needed.
    job = service.prepare(sample_pair[0].read_bytes(), sample_pair[1].read_bytes(), one_hot(2))
    assert tuple(job.net.photo.shape) == (1, 3, 256, 256) and job.out_size == (256, 256) and not job.aligned


def test_style_text_errors_are_worded_for_the_api():
    assert parse_style("0.5,0,0.5").sum().item() == pytest.approx(1.0)
    for text, words in (("abc", "style takes 1, 2 or 3"), ("4", "style must be 1, 2 or 3"),
                        ("0,0,0", "not all zero"), ("1" * 101, "longer than 100")):
        with pytest.raises(BadRequest, match=words) as info:
            parse_style(text)
        assert "--style" not in str(info.value)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1:8000", True), ("localhost", True), ("localhost:80", True), ("[::1]:8000", True),
    ("127.3.4.5", True), ("app.localhost:8000", True), ("evil.example", False), ("10.0.0.1:8000", False),
    ("127.0.0.1.evil.example", False), ("", False), ("[::2]", False)])
def test_loopback_host_names(host, loopback):
    assert is_loopback_name(host) is loopback


def test_settings_refuse_what_cannot_work():
    assert Settings().check().local_only
    for bad, words in ((dict(host="0.0.0.0"), "give an API key"), (dict(host="127.0.0.2"), "give an API key"),
                       (dict(host="0.0.0.0", api_key="short"), "at least 16"), (dict(size=300), "multiple of 256"),
                       (dict(max_batch=0), "--max-batch"), (dict(client_share=0), "--client-share"),
                       (dict(cors_origins=("app.example",)), "not an origin")):
        with pytest.raises(InputError, match=words):
            Settings(**bad).check()
    keyed = Settings(host="0.0.0.0", api_key="k" * 16).check()
    assert not keyed.local_only and keyed.per_client_requests == 32 and "k" * 16 not in repr(keyed)


def test_without_the_serve_extra_the_command_says_how_to_install_it(monkeypatch):
    from hida_rt.errors import MissingDependency
    from hida_rt.serve._deps import SERVE_INSTALL, require_serve

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingDependency) as info:
        require_serve()
    assert SERVE_INSTALL in str(info.value) and "\n" not in str(info.value)


def test_importing_the_package_needs_neither_fastapi_nor_torch():
    import subprocess

    code = ("import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = None\n"
            "import hida_rt.serve; assert 'torch' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
