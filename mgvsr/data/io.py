"""Reading and writing frames, and listing a folder of frames in the order of their numbers.

Every frame mgvsr handles is ``(h, w, 3)`` uint8 RGB.  :func:`read_frame` decodes with
OpenCV (which reads BGR; we convert) and turns every way a file can be bad into a
:class:`~mgvsr.errors.DataError` that names the file:

- missing, empty, garbage or truncated files (OpenCV's ``imread`` just returns None);
- 16-bit images are refused (the protocols score uint8 frames; converting silently would
  change the numbers): convert them to 8 bits first;
- grayscale frames are repeated to three channels; an alpha channel is dropped.

Frames of a clip are ordered by the number in their names (natural order): Vid4 uses
``Frame 01.png`` and ``Frame 001.png``, REDS ``00000000.png``, Vimeo-90K ``im1.png`` ..
``im7.png``; string order would put ``im10`` before ``im2``.  :func:`list_frames` also
refuses folders without frames and numberings with gaps (a missing frame) or duplicates.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import cv2
import numpy as np

from mgvsr.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_frame",
    "write_frame",
    "frame_size",
    "natural_key",
    "frame_number",
    "list_frames",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_bytes(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"frame not found: {path} (expected an image file)")
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: safe with any file name
    if data.size == 0:
        raise DataError(f"empty file: {path} (expected an 8-bit RGB image)")
    return data


def read_frame(path: str | Path) -> np.ndarray:
    """Decode an image file into ``(h, w, 3)`` uint8 RGB; :class:`DataError` if it cannot be."""
    path = Path(path)
    data = _read_bytes(path)
    if path.suffix.lower() == ".png" and data[:8].tobytes() == _PNG_SIGNATURE:
        # A PNG ends with an IEND chunk; without it the file was cut short.
        if data[-4096:].tobytes().rfind(b"IEND") < 0:
            raise DataError(f"truncated PNG: {path} (no IEND chunk; the file was cut short)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise DataError(f"cannot decode {path}: {exc} (expected an 8-bit RGB image)") from exc
    if image is None:
        raise DataError(f"cannot decode {path}: not a readable image, or corrupt/truncated (expected an 8-bit RGB image)")
    if image.dtype != np.uint8:
        raise DataError(
            f"{path} holds {image.dtype} pixels; mgvsr expects 8-bit frames "
            "(convert it to 8 bits per channel first)"
        )
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)  # alpha dropped
    raise DataError(f"{path} has {channels} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)")


def write_frame(path: str | Path, rgb: np.ndarray) -> None:
    """Write ``(h, w, 3)`` uint8 RGB (or ``(h, w)`` gray) to ``path``; the suffix picks the format."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ValueError(f"write_frame expects (h, w, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataError(f"cannot encode a frame as {path.suffix!r} for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))


def frame_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image: from the PNG header (24 bytes) or else by decoding."""
    path = Path(path)
    if path.suffix.lower() == ".png" and path.is_file():
        with open(path, "rb") as f:
            head = f.read(24)
        if len(head) == 24 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return int(height), int(width)
    return read_frame(path).shape[:2]


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers in names by value: ``im2`` < ``im10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def frame_number(path: str | Path) -> int:
    """The frame number of a file: the last run of digits in its name (``Frame 007.png`` -> 7)."""
    numbers = re.findall(r"\d+", Path(path).stem)
    if not numbers:
        raise DataError(f"{path}: a frame's file name must contain its number (like 00000000.png, im1.png)")
    return int(numbers[-1])


def list_frames(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` in frame order; :class:`DataError` on gaps or no frames.

    Files whose suffix is not an image (``.txt``, ``Thumbs.db``...) and hidden files are not
    frames and are left out; every image must carry a number, and the numbers must run
    without gaps or duplicates (they may start anywhere: 0 for REDS, 1 for Vid4).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"frame folder not found: {folder}")
    images = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not images:
        raise DataError(f"{folder} holds no image frames (expected {', '.join(IMAGE_EXTENSIONS)} files)")
    numbered = sorted(((frame_number(p), p) for p in images), key=lambda item: (item[0], natural_key(item[1].name)))
    for (n1, p1), (n2, p2) in zip(numbered, numbered[1:]):
        if n1 == n2:
            raise DataError(f"{folder}: frames {p1.name!r} and {p2.name!r} both carry number {n1}")
        if n2 != n1 + 1:
            missing = ", ".join(str(n) for n in range(n1 + 1, min(n2, n1 + 6)))
            more = ", ..." if n2 - n1 - 1 > 5 else ""
            raise DataError(
                f"{folder}: frame number {missing}{more} missing between {p1.name!r} and {p2.name!r} "
                "(expected consecutive frame numbers)"
            )
    return [p for _, p in numbered]
