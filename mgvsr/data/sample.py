"""The embedded sample clips: short videos rendered from real photographs.

scikit-image ships a dozen photographs with its data module (public domain or CC-licensed,
see ``skimage/data/README.txt``).  Each sample clip moves a virtual camera smoothly over one
of them (translation with a slow sway, a slight zoom and rotation, all sub-pixel) while
one or two objects cut from other photographs move independently across the frame.  The
ground truth (GT) is rendered at 256 x 256; the LQ input is the MATLAB bicubic x4
downscale (64 x 64), as the "BI" degradation of Vid4 and Vimeo-90K.

Held-out test clips use photographs that no training clip shows.  Everything is drawn
from fixed seeds, so the clips are the same bytes every time; they are generated on first
use into the cache (``mgvsr.paths.cache_dir()``, git-ignored) and written as PNG folders
in the layout of any folder of clips (``<split>/GT/<clip>/00000000.png``, ``BIx4`` beside it).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import write_frame
from mgvsr.data.resize import bicubic_downscale
from mgvsr.paths import cache_dir

VERSION = 1
GT_SIZE = (256, 256)  # (height, width) of the rendered ground truth
SCALE = 4


@dataclass(frozen=True)
class Sprite:
    """An object cut from ``photo`` with a soft elliptical mask, moving on its own path."""

    photo: str
    radius: int  # half-size of the cut-out, in photo pixels
    velocity: tuple[float, float]  # GT pixels per frame (x, y)
    spin: float  # degrees per frame


@dataclass(frozen=True)
class ClipSpec:
    name: str
    photo: str
    zoom: float  # GT pixels per photo pixel (< 1: the photo is reduced, keeping detail)
    velocity: tuple[float, float]  # camera pan, GT pixels per frame (x, y)
    sway: float  # amplitude of a slow sinusoidal sway added to the pan, GT pixels
    zoom_rate: float  # relative zoom change per frame
    spin: float  # camera rotation, degrees per frame
    frames: int
    sprites: tuple[Sprite, ...]
    seed: int


# Photographs of skimage.data: training clips and held-out test clips never share one.
TRAIN_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("astronaut", "astronaut", 0.80, (2.1, 0.9), 3.0, 0.0010, 0.05, 30,
             (Sprite("chelsea", 60, (-3.2, 1.1), 0.4),), 11),
    ClipSpec("coffee", "coffee", 0.75, (-1.7, 0.6), 2.0, -0.0008, -0.04, 30,
             (Sprite("coins", 70, (2.6, -1.8), -0.6),), 12),
    ClipSpec("rocket", "rocket", 0.70, (1.3, -1.2), 4.0, 0.0006, 0.03, 30,
             (Sprite("chelsea", 50, (3.5, 2.0), 0.0),), 13),
    ClipSpec("hubble", "hubble_deep_field", 0.85, (-2.4, -1.5), 2.5, 0.0012, 0.06, 30,
             (Sprite("coins", 55, (-2.2, 2.9), 0.8),), 14),
    ClipSpec("retina", "retina", 0.45, (2.8, 1.9), 3.5, -0.0010, -0.05, 30,
             (Sprite("chelsea", 70, (1.5, -3.1), -0.3),), 15),
    ClipSpec("motorcycle", "motorcycle_left", 0.80, (-1.2, -0.4), 2.0, 0.0007, 0.02, 30,
             (Sprite("coins", 60, (3.9, 0.5), 0.5), Sprite("chelsea", 45, (-1.0, 2.4), 0.0)), 16),
    ClipSpec("brick", "brick", 0.85, (1.9, 2.2), 1.5, 0.0005, 0.08, 30,
             (Sprite("chelsea", 55, (-2.9, -1.4), 0.2),), 17),
    ClipSpec("grass", "grass", 0.85, (-2.0, 1.4), 3.0, -0.0006, -0.07, 30,
             (Sprite("coins", 65, (2.4, 2.6), -0.4),), 18),
    ClipSpec("moon", "moon", 0.85, (1.6, -2.1), 2.5, 0.0009, 0.04, 30,
             (Sprite("chelsea", 60, (-3.6, 0.8), 0.6),), 19),
)
TEST_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("camera", "camera", 0.85, (1.8, 1.1), 2.5, 0.0008, 0.05, 20,
             (Sprite("text", 60, (-3.0, 1.5), 0.3),), 21),
    ClipSpec("gravel", "gravel", 0.85, (-1.5, 1.9), 2.0, -0.0007, -0.06, 20,
             (Sprite("page", 70, (2.8, -2.2), -0.5),), 22),
    ClipSpec("ihc", "immunohistochemistry", 0.80, (2.3, -1.0), 3.0, 0.0010, 0.03, 20,
             (Sprite("text", 50, (-2.1, -2.7), 0.0),), 23),
)


def load_photo(name: str) -> np.ndarray:
    """A scikit-image photograph as ``(h, w, 3)`` float32 RGB in [0, 255]."""
    import skimage.data

    if name.startswith("motorcycle"):
        left, right, _ = skimage.data.stereo_motorcycle()
        img = left if name.endswith("left") else right
    else:
        img = getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3].astype(np.float32)


def _prefilter(photo: np.ndarray, zoom: float) -> np.ndarray:
    """Blur before reducing by ``zoom`` < 1, so the rendered frames do not alias."""
    if zoom >= 1.0:
        return photo
    sigma = 0.5 * math.sqrt(1.0 / zoom**2 - 1.0)
    return cv2.GaussianBlur(photo, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _inverse_affine(center_src: tuple[float, float], zoom: float, angle_deg: float,
                    center_dst: tuple[float, float]) -> np.ndarray:
    """2x3 matrix mapping destination (frame) pixels to source (photo) pixels."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) / zoom, math.sin(a) / zoom
    cx, cy = center_dst
    sx, sy = center_src
    return np.array([[c, -s, sx - c * cx + s * cy], [s, c, sy - s * cx - c * cy]], dtype=np.float64)


def _warp(img: np.ndarray, matrix: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    h, w = size
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=border)


def _sprite_layers(sprite: Sprite, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sprite's pixels and its soft elliptical alpha mask (photo resolution)."""
    photo = load_photo(sprite.photo)
    r = sprite.radius
    h, w = photo.shape[:2]
    cy = int(rng.integers(r, h - r))
    cx = int(rng.integers(r, w - r))
    patch = photo[cy - r : cy + r, cx - r : cx + r].copy()
    yy, xx = np.mgrid[-r:r, -r:r].astype(np.float32) + 0.5
    ell = (xx / r) ** 2 + (yy / (0.75 * r)) ** 2
    alpha = np.clip((1.0 - ell) * 6.0, 0.0, 1.0).astype(np.float32)
    return patch, alpha


@dataclass
class _Scene:
    """What a clip is made of: the photograph, the camera's and every sprite's per-frame
    inverse affine matrices (frame pixel -> photo / sprite pixel)."""

    background: np.ndarray
    camera: list[np.ndarray]
    sprites: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]  # (pixels, alpha, matrices)


def _scene(spec: ClipSpec, size: tuple[int, int]) -> _Scene:
    rng = np.random.default_rng(spec.seed)
    h, w = size
    photo = load_photo(spec.photo)
    ph, pw = photo.shape[:2]
    t = np.arange(spec.frames, dtype=np.float64)
    phase = rng.uniform(0, 2 * math.pi)
    # camera centre on the photo (photo pixels): a pan plus a slow sway, centred on the photo
    pan_x = spec.velocity[0] * t + spec.sway * np.sin(2 * math.pi * t / spec.frames + phase)
    pan_y = spec.velocity[1] * t + spec.sway * np.cos(2 * math.pi * t / spec.frames + phase)
    pan_x -= pan_x.mean()
    pan_y -= pan_y.mean()
    zooms = spec.zoom * (1.0 + spec.zoom_rate) ** (t - t.mean())
    camera = [_inverse_affine((pw / 2 + pan_x[i] / spec.zoom, ph / 2 + pan_y[i] / spec.zoom), zooms[i],
                              spec.spin * i, (w / 2, h / 2)) for i in range(spec.frames)]
    sprites = []
    for sp in spec.sprites:
        pixels, alpha = _sprite_layers(sp, rng)
        start = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h)
        mats = []
        for i in range(spec.frames):
            pos = (start[0] + sp.velocity[0] * (i - spec.frames / 2),
                   start[1] + sp.velocity[1] * (i - spec.frames / 2))
            mats.append(_inverse_affine((sp.radius, sp.radius), spec.zoom, sp.spin * i, pos))
        sprites.append((_prefilter(pixels, spec.zoom), alpha, mats))
    return _Scene(_prefilter(photo, spec.zoom), camera, sprites)


def render_clip(spec: ClipSpec, size: tuple[int, int] = GT_SIZE) -> np.ndarray:
    """Render ``spec`` as ``(t, h, w, 3)`` uint8 RGB ground-truth frames."""
    scene = _scene(spec, size)
    h, w = size
    frames = np.empty((spec.frames, h, w, 3), dtype=np.uint8)
    for i in range(spec.frames):
        frame = _warp(scene.background, scene.camera[i], size, cv2.BORDER_REFLECT_101)
        for pixels, alpha, mats in scene.sprites:
            layer = _warp(pixels, mats[i], size, cv2.BORDER_CONSTANT)
            a = _warp(alpha, mats[i], size, cv2.BORDER_CONSTANT)[:, :, None].clip(0.0, 1.0)
            frame = frame * (1.0 - a) + layer * a
        frames[i] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames


def _moved(matrix_from: np.ndarray, matrix_to: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Where the point seen at frame pixels ``xy`` (n, 2) of one frame is in another frame."""
    src = xy @ matrix_from[:, :2].T + matrix_from[:, 2]
    to = np.vstack([matrix_to, [0.0, 0.0, 1.0]])
    back = np.linalg.inv(to)
    return src @ back[:2, :2].T + back[:2, 2]


def clip_flows(spec: ClipSpec, pairs: list[tuple[int, int]], size: tuple[int, int] = GT_SIZE,
               scale: int = SCALE) -> np.ndarray:
    """The true optical flow of the LQ frames: ``(n, 2, h, w)`` float32 for each ``(i, j)`` in ``pairs``.

    ``flow[:, :, y, x]`` is the displacement (x, y), in LQ pixels, from pixel (x, y) of frame
    ``i`` to where the same surface point is in frame ``j`` (the convention of SpyNet and
    ``flow_warp``: warping frame ``j`` by it gives frame ``i``).  Where a sprite covers
    frame ``i`` the sprite's motion is used, elsewhere the camera's.  The GT-resolution
    flow is averaged over every ``scale x scale`` block and divided by ``scale``.
    """
    scene = _scene(spec, size)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xy = np.stack([xs.ravel(), ys.ravel()], 1)
    out = np.empty((len(pairs), 2, h // scale, w // scale), np.float32)
    for k, (i, j) in enumerate(pairs):
        flow = _moved(scene.camera[i], scene.camera[j], xy) - xy
        for _, alpha, mats in scene.sprites:
            cover = _warp(alpha, mats[i], size, cv2.BORDER_CONSTANT).ravel() > 0.5
            flow[cover] = _moved(mats[i], mats[j], xy[cover]) - xy[cover]
        flow = flow.reshape(h // scale, scale, w // scale, scale, 2).mean(axis=(1, 3)) / scale
        out[k] = flow.transpose(2, 0, 1)
    return out


def _specs(split: str) -> tuple[ClipSpec, ...]:
    if split == "train":
        return TRAIN_CLIPS
    if split == "test":
        return TEST_CLIPS
    raise ValueError(f"unknown sample split {split!r}; expected 'train' or 'test'")


def _fingerprint() -> str:
    specs = {"version": VERSION, "size": GT_SIZE, "scale": SCALE,
             "train": [asdict(s) for s in TRAIN_CLIPS], "test": [asdict(s) for s in TEST_CLIPS]}
    return hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()[:12]


def sample_root(root: Path | None = None) -> Path:
    """Folder of the generated sample clips (generated on first call).

    The first rendering holds an exclusive lock (``<root>.lock`` beside it), so that two processes
    started at once on a fresh checkout (two notebooks, two test workers) render the clips once: the
    second waits and then finds them, instead of replacing the folder under the first one's feet."""
    root = Path(root) if root is not None else cache_dir() / f"sample-v{VERSION}-{_fingerprint()}"
    if not (root / "manifest.json").is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / f"{root.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not (root / "manifest.json").is_file():
                generate(root)
    return root


def generate(root: Path, progress: bool = True) -> dict:
    """Render every sample clip into ``root`` (atomically: a temporary folder, then a rename).

    Returns the manifest: a SHA-256 of every frame file, so that two generations can be
    compared byte for byte.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".tmp-", dir=root.parent))
    manifest: dict = {"version": VERSION, "fingerprint": _fingerprint(), "files": {}}
    try:
        specs = [(split, s) for split in ("train", "test") for s in _specs(split)]
        for split, spec in tqdm(specs, desc="rendering sample clips", disable=not progress):
            gt = render_clip(spec)
            lq = bicubic_downscale(gt, SCALE)
            for kind, frames in (("GT", gt), (f"BIx{SCALE}", lq)):
                folder = tmp / split / kind / spec.name
                folder.mkdir(parents=True)
                for i, frame in enumerate(frames):
                    path = folder / f"{i:08d}.png"
                    write_frame(path, frame)
                    rel = path.relative_to(tmp).as_posix()
                    manifest["files"][rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def sample_source(split: str = "train", root: Path | None = None, cache: bool = True):
    """The sample clips of ``split`` ("train" or "test") as a :class:`~mgvsr.data.source.ClipSource`."""
    _specs(split)
    base = sample_root(root) / split
    return FolderSource(base / "GT", base / f"BIx{SCALE}", scale=SCALE, cache=cache, name=f"sample-{split}")
