"""Decoding, H.264 encoding with audio pass-through, truncated and corrupt inputs, webcam sources."""
import numpy as np
import pytest
from testutils.synthetic_video import probe, write_clip

from hida_rt.errors import InputError


def noise_frames(n, w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def copy_through(src, dst):
    from hida_rt.video.io import FileReader, H264Writer

    reader = FileReader(src)
    writer = H264Writer(dst, reader.width, reader.height, reader.fps, audio_from=src if reader.has_audio else None)
    for frame in reader.frames():
        writer.write(frame.image, frame.time)
    writer.close()
    reader.close()
    return reader


def test_reader_reports_the_stream(face_clip):
    from hida_rt.video.io import FileReader

    reader = FileReader(face_clip)
    frames = list(reader.frames())
    reader.close()
    assert (reader.width, reader.height, reader.fps, reader.frame_count, reader.has_audio) == (320, 240, 25, 8, True)
    assert [f.index for f in frames] == list(range(8))
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(8)])
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8


def test_h264_out_with_the_aac_audio_copied(face_clip, tmp_path):
    copy_through(face_clip, tmp_path / "out.mp4")
    info = probe(tmp_path / "out.mp4")
    assert info["codec"] == "h264" and (info["width"], info["height"]) == (320, 240)
    assert len(info["frames"]) == 8 and info["audio"] == ["aac"]
    original = probe(face_clip)["frames"]
    assert np.abs(info["frames"][4].astype(int) - original[4].astype(int)).mean() < 3  # crf 18: near-lossless


def test_audio_the_container_cannot_carry_is_re_encoded(av, tmp_path):
    src = write_clip(tmp_path / "pcm.mkv", noise_frames(10), audio="pcm_s16le")
    copy_through(src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        seconds = sum(p.duration or 0 for p in c.demux(audio)) * audio.time_base
    assert float(seconds) == pytest.approx(10 / 25, abs=0.06)  # the whole tone, in step with the video


def test_odd_frame_sizes_lose_one_row_and_column(av, tmp_path):
    src = write_clip(tmp_path / "odd.mkv", noise_frames(3, 65, 49), audio=None, video_codec="ffv1", pix_fmt="yuv444p")
    copy_through(src, tmp_path / "out.mp4")
    info = probe(tmp_path / "out.mp4")
    assert (info["width"], info["height"], len(info["frames"]), info["audio"]) == (64, 48, 3, [])


@pytest.mark.parametrize("damage", ["missing", "garbage", "cut_header", "cut_stream"])
def test_unusable_files_are_one_line_input_errors(av, tmp_path, damage):
    from hida_rt.video.io import FileReader

    path = tmp_path / "clip.mp4"
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "cut_header":  # moov atom at the end: cut, nothing can be read
        write_clip(path, noise_frames(20), audio=None)
        path.write_bytes(path.read_bytes()[:4000])
    elif damage == "cut_stream":  # moov first (faststart): it opens, then the data runs out
        write_clip(path, noise_frames(40), audio=None, options={"movflags": "faststart"})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError) as info:
        reader = FileReader(path)
        list(reader.frames())
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_open_source_tells_files_from_webcams(av, tmp_path, face_clip):
    from hida_rt.video.io import FileReader, open_source

    assert isinstance(open_source(str(face_clip)), FileReader)
    with pytest.raises(InputError, match="no such video file"):
        open_source(str(tmp_path / "webcam:x"))


def test_capture_reader_reads_what_opencv_opens(face_clip):
    # The webcam reader is OpenCV's VideoCapture, which opens files the same way;
    # no camera is needed to check its frames, timing and stop().
    pytest.importorskip("cv2", reason="webcams need OpenCV (the face extra)")
    from hida_rt.video.io import CaptureReader

    reader = CaptureReader(str(face_clip))
    assert (reader.width, reader.height, reader.frame_count) == (320, 240, None)
    got = []
    for frame in reader.frames():
        got.append(frame)
        if len(got) == 5:
            reader.stop()
    reader.close()
    assert len(got) == 5 and [f.index for f in got] == list(range(5))
    assert all(b.time >= a.time for a, b in zip(got, got[1:]))
    first = probe(face_clip)["frames"][0]
    assert np.abs(got[0].image.astype(int) - first.astype(int)).mean() < 2  # RGB, not OpenCV's BGR


def test_a_missing_webcam_is_one_line(face_clip):
    pytest.importorskip("cv2", reason="webcams need OpenCV (the face extra)")
    from hida_rt.video.io import open_source

    with pytest.raises(InputError, match="cannot open webcam 57"):
        open_source("webcam:57")


def test_portrait_phone_video_is_turned_upright(av, tmp_path):
    from hida_rt.video.io import FileReader

    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :8] = 255  # a white band along the stored frame's left edge
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 32, "yuv420p"
        v.set_display_rotation(90)  # shown turned a quarter counter-clockwise
        for i in range(2):
            f = av.VideoFrame.from_ndarray(stored, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    reader = FileReader(path)
    frames = list(reader.frames())
    reader.close()
    assert (reader.width, reader.height) == (32, 64) and frames[0].image.shape == (64, 32, 3)
    assert frames[0].image[-6:].mean() > 200 and frames[0].image[:-10].mean() < 30  # left edge is now the bottom


def test_write_failures_are_one_line(av, tmp_path):
    from hida_rt.errors import HidaError
    from hida_rt.video.io import H264Writer

    with pytest.raises(HidaError, match=r"^out\.mp4: writing the video failed \(No such file or directory\)$"):
        H264Writer(tmp_path / "missing-dir" / "tmp.mp4", 64, 48, 25, name="out.mp4")


def test_audio_stops_where_a_shortened_video_stops(face_clip, tmp_path, av):
    from hida_rt.video.io import FileReader, H264Writer

    reader = FileReader(face_clip)
    writer = H264Writer(tmp_path / "short.mp4", reader.width, reader.height, reader.fps, audio_from=face_clip)
    for frame in list(reader.frames())[:4]:  # as --max-frames 4 does
        writer.write(frame.image, frame.time)
    writer.close()
    reader.close()
    with av.open(str(tmp_path / "short.mp4")) as c:
        audio = c.streams.audio[0]
        packets = [p for p in c.demux(audio) if p.size]
        end = float((packets[-1].pts + packets[-1].duration) * audio.time_base)
    assert 4 / 25 <= end <= 4 / 25 + 0.05  # up to the last video frame's end, within one AAC packet
