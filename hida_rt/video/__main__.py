"""Sketch a video or a webcam: hida-rt video INPUT -o OUT.mp4 --weights W [--style S]

Decode -> face front end (detect, align, depth) -> backend (batched) ->
paste the sketch back -> H.264, each stage in its own thread (see
hida_rt.video.pipeline). Audio is copied through. The output is written
under a temporary name and renamed at the end, so a failed run leaves no file.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from .. import memory, styles
from ..cli import atomic_path, prog_name, run_cli
from ..cli_options import add_backend_options, add_style, add_weights, backend_from_args
from ..errors import InputError
from ..images import whole_frame_size
from ..model import SIZE_MULTIPLE
from .io import (OUTPUT_SUFFIXES, VERYFAST_MIN_CORES, X264_PRESETS, FileReader, H264Writer, default_preset,
                       open_source)
from .modes import NO_FACE_POLICIES, FaceMode, WholeFrameMode
from .pipeline import Pipeline, Result, default_workers


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("video"),
        description="Turn the faces in a video (or a webcam) into HIDA pencil sketches, pasted back into "
                    "the frames, and write an H.264 video with the input's audio.",
        epilog="Examples:\n"
               "  hida-rt video talk.mp4 -o talk_sketch.mp4 --weights hida.ckpt --style 2\n"
               "  hida-rt video webcam -o me.mp4 --weights hida.ckpt   (Ctrl-C ends the recording)\n"
               "  hida-rt video street.mp4 --whole-frame --weights hida.ckpt\n\n"
               "Needs the video extra (PyAV) and, except with --whole-frame, the face extra (MediaPipe).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT",
                   help='video file, or a webcam: "webcam", "webcam:N" or a bare index N')
    p.add_argument("--output", "-o", default=None,
                   help=f"output video ({', '.join(OUTPUT_SUFFIXES)}; default: INPUT-STEM_sketch.mp4 beside the "
                        "input, webcam_sketch.mp4 for a webcam)")
    add_weights(p)
    add_style(p)
    add_backend_options(p)
    p.add_argument("--batch-size", type=int, default=4, help="network inputs (faces or frames) per backend call (default 4)")
    p.add_argument("--max-faces", type=int, default=1, help="faces sketched per frame, largest first (default 1)")
    p.add_argument("--no-face", choices=tuple(NO_FACE_POLICIES), default="pass",
                   help="what a frame without a face becomes: "
                        + "; ".join(f"{k}: {v}" for k, v in NO_FACE_POLICIES.items()) + " (default pass)")
    p.add_argument("--no-smoothing", action="store_true",
                   help="align each frame on its own landmarks (default: One-Euro smoothing over time, so the "
                        "sketch does not jitter)")
    p.add_argument("--whole-frame", action="store_true",
                   help="sketch the whole frame instead of the faces: resized to multiples of 256, flat depth 0 "
                        "(no face geometry), resized back")
    p.add_argument("--net-height", type=int, default=None,
                   help=f"with --whole-frame: network height, a multiple of {SIZE_MULTIPLE} (default: the frame "
                        "height rounded to one); the width follows the aspect ratio")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) to 51 (worst) (default 18)")
    p.add_argument("--preset", default="auto", choices=("auto", *X264_PRESETS),
                   help="x264 speed/size trade-off; auto (default): veryfast on a machine with "
                        f"{VERYFAST_MIN_CORES}+ CPU cores, else ultrafast (files 4-6x bigger, but on few cores veryfast "
                        f"would cost more CPU than the rest of the pipeline; here: {default_preset()})")
    p.add_argument("--workers", type=int, default=None,
                   help="threads that cut faces and render their depth maps beside the tracking thread (default: "
                        f"from the CPU cores, here {default_workers()})")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def check_args(args: argparse.Namespace) -> None:
    for name in ("batch_size", "max_faces") + (("workers",) if args.workers is not None else ()):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if args.net_height is not None and not args.whole_frame:
        raise InputError("--net-height applies to --whole-frame only (face mode runs the 256x256 template)")
    if args.net_height is not None and (args.net_height <= 0 or args.net_height % SIZE_MULTIPLE):
        raise InputError(f"--net-height {args.net_height} is not a positive multiple of {SIZE_MULTIPLE}")
    if not 0 <= args.crf <= 51:
        raise InputError(f"--crf must be between 0 and 51, got {args.crf}")


def output_path(args: argparse.Namespace, reader) -> Path:
    if args.output is None:
        if isinstance(reader, FileReader):
            return reader.path.with_name(f"{reader.path.stem}_sketch.mp4")
        return Path("webcam_sketch.mp4")
    out = Path(args.output)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{out}: output must end in {', '.join(OUTPUT_SUFFIXES)}")
    if isinstance(reader, FileReader) and out.resolve() == reader.path.resolve():
        raise InputError(f"{out}: the output would overwrite the input")
    return out


def summary(out: Path, result: Result, width: int, height: int, whole_frame: bool) -> str:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in result.stage_ms.items())
    what = "sketched whole" if whole_frame else "with a face"
    return (f"wrote {out}: {result.frames} frames {width}x{height}, {result.frames_with_input} {what}, "
            f"{result.fps:.2f} fps end to end\n  busy ms per frame: {stages}")


def sketch_video(args: argparse.Namespace) -> tuple[Path, Result, tuple[int, int]]:
    """Run the whole conversion for parsed arguments: (output path, run figures, output width × height).

    Cheap checks come first (arguments, input, output folder), so a mistake
    is reported before MediaPipe and the model are loaded.
    """
    check_args(args)
    style = styles.parse_style(args.style)
    reader = open_source(args.input)  # decodes the first frame: a bad input fails here
    mode = None
    try:
        out = output_path(args, reader)
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(out))  # an unwritable place is a one-line InputError
            if args.whole_frame:
                net = whole_frame_size(reader.height, reader.width, args.net_height)
                memory.check_fits(*net, args.batch_size, option=f"{args.input} at --whole-frame",
                                  multiple=SIZE_MULTIPLE)
                mode = WholeFrameMode(reader.height, reader.width, args.net_height)
            else:
                from ..face import Smoothing

                # The reader's frames are used once: sketches are pasted into them, not into copies.
                mode = FaceMode(args.max_faces, None if args.no_smoothing else Smoothing(), args.no_face,
                                draw_in_place=True)
            backend = backend_from_args(args)

            def run_backend(photo, depth):
                return backend.run(photo, depth, style.expand(len(photo), 3).contiguous())

            preset = default_preset() if args.preset == "auto" else args.preset
            writer = H264Writer(tmp, reader.width, reader.height, reader.fps, crf=args.crf, preset=preset,
                                audio_from=reader.path if isinstance(reader, FileReader) and reader.has_audio else None,
                                name=str(out))
            total = reader.frame_count if args.max_frames is None else min(reader.frame_count or args.max_frames,
                                                                         args.max_frames)
            bar = tqdm(total=total, unit="frame", desc=f"sketch ({backend.name})", disable=args.quiet,
                       dynamic_ncols=True, file=sys.stderr)
            try:
                result = Pipeline(itertools.islice(reader.frames(), args.max_frames), mode, run_backend, writer.write,
                                  batch_size=args.batch_size, on_frame=lambda work: bar.update(),
                                  graceful_stop=None if isinstance(reader, FileReader) else reader.stop,
                                  workers=args.workers).run()
            except BaseException:
                writer.abort()
                raise
            finally:
                bar.close()
            writer.close()
            if result.frames == 0:
                raise InputError(f"{reader.name}: no frames to write")
    finally:
        reader.close()
        if mode is not None:
            mode.close()
    return out, result, (writer.width, writer.height)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, result, (width, height) = sketch_video(args)
    if not args.quiet:
        print(summary(out, result, width, height, args.whole_frame))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.video"))
