"""Encoding in a short-lived child process, so the calling process never loads dlib.

Why: importing face_recognition loads dlib's models (the 68-point landmark
model, the ResNet encoder, the HOG and CNN detectors), and a process keeps
that memory for its lifetime. A gunicorn worker that encoded one selfie would
stay some 190 MB larger until it is recycled (87 → 280 MB measured). `find_faces()` instead runs
`engine.find_faces` in a fresh `python -m faces.isolated` that loads the
models, encodes one image and exits, returning its memory to the system. It
costs the child's start and model load (about 1.3 s of CPU) on every call.

The child gets the image's RGB pixels (a NumPy .npy file on stdin, no pickle)
and the EngineOptions as JSON on its command line, so it needs neither Django
nor settings and analyses exactly what `engine.find_faces` would in-process.
It answers with JSON on stdout. A child that crashes, is killed (out of
memory) or outlives its timeout is reported as `EncoderFailed`; the timeout
kills and reaps it.

Import workers (faces/workers.py) keep their models loaded on purpose: they
encode thousands of photos and would pay the load for each.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faces import engine

logger = logging.getLogger(__name__)

# The folder holding the `faces` package: the child's working directory, so
# `python -m faces.isolated` finds this code whatever the caller's directory.
CODE_ROOT = Path(__file__).resolve().parents[1]
STDERR_TAIL_CHARS = 4000
EXCEPTION_MESSAGE_CHARS = 500  # dlib's argument errors quote the whole pixel array


class EncoderFailed(engine.EngineError):
    """The child process did not return faces: it crashed, was killed or ran out of time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def find_faces(
    image: Image.Image, options: engine.EngineOptions, *, timeout_s: float
) -> list[engine.DetectedFace]:
    """`engine.find_faces(image, options)`, run in a child process that exits afterwards.

    image is an upright RGB image (as `engine.load_image` returns). The child
    is killed once timeout_s seconds have passed since its start (model load
    included). Raises EncoderFailed when no answer comes back; the reason is
    logged with the child's error output.
    """
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(image.convert("RGB"), dtype=np.uint8), allow_pickle=False)
    command = [sys.executable, "-m", "faces.isolated", json.dumps(dataclasses.asdict(options))]
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            command,
            input=buffer.getvalue(),
            capture_output=True,
            cwd=CODE_ROOT,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped the child
        logger.error("selfie encoding process timed out after %s s: %s", timeout_s, _tail(exc.stderr))
        raise EncoderFailed(f"encoding took longer than {timeout_s:g} s", timed_out=True) from None
    if result.returncode != 0:
        reason = _exit_reason(result.returncode)
        logger.error("selfie encoding process %s: %s", reason, _tail(result.stderr))
        raise EncoderFailed(f"the encoding process {reason}")
    try:
        return [_face_from_json(face) for face in json.loads(result.stdout)["faces"]]
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("selfie encoding process answered %r: %s", result.stdout[:200], exc)
        raise EncoderFailed("the encoding process gave an unreadable answer") from exc


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {returncode}"


def _tail(stderr: bytes | str | None) -> str:
    if not stderr:
        return "no error output"
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return text.strip()[-STDERR_TAIL_CHARS:]


def _face_to_json(face: engine.DetectedFace) -> dict[str, Any]:
    # float32 → Python float is exact, and JSON keeps every digit of a float.
    return {
        "top": face.top,
        "right": face.right,
        "bottom": face.bottom,
        "left": face.left,
        "encoding": [float(value) for value in face.encoding],
        "turn": face.turn,
    }


def _face_from_json(face: dict[str, Any]) -> engine.DetectedFace:
    encoding = np.asarray(face["encoding"], dtype=np.float32)
    if encoding.shape != (engine.ENCODING_SIZE,):
        raise ValueError(f"an encoding of {encoding.shape} values")
    return engine.DetectedFace(
        top=int(face["top"]),
        right=int(face["right"]),
        bottom=int(face["bottom"]),
        left=int(face["left"]),
        encoding=encoding,
        turn=None if face.get("turn") is None else float(face["turn"]),
    )


def main(argv: list[str]) -> int:
    """The child: options JSON as the one argument, .npy pixels on stdin, faces JSON on stdout.

    Any exception exits with status 1 after a traceback on stderr, its
    message shortened, for the parent's log.
    """
    try:
        return _encode(argv)
    except Exception as exc:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        message = str(exc)[:EXCEPTION_MESSAGE_CHARS]
        sys.stderr.write(f"Traceback (most recent call last):\n{frames}{type(exc).__name__}: {message}\n")
        return 1


def _encode(argv: list[str]) -> int:
    options = engine.EngineOptions(**json.loads(argv[0]))
    pixels = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 pixels, got {pixels.dtype} {pixels.shape}")
    faces = engine.find_faces(Image.fromarray(pixels), options)
    sys.stdout.write(json.dumps({"faces": [_face_to_json(face) for face in faces]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
