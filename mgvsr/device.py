"""Which device a run computes on, in which arithmetic, and what to call it in a run log.

- :func:`resolve_device`: ``"auto"`` is CUDA when present, else the CPU.
- :func:`resolve_precision`: with ``amp``, bfloat16 autocast where the device computes bfloat16
  natively (a CUDA device of compute capability 8.0 or more, a CPU with AVX512-BF16 or AMX),
  float16 with loss scaling on older CUDA devices (a V100 or T4: capability 7.x), fp32 elsewhere
  (an emulated bfloat16 is slower than fp32).  :func:`precision_note` says which and why.
- :func:`autocast` and :func:`synchronize`: the context and the wait that a training step uses.
- :func:`device_name`, :func:`cpu_model`, :func:`cpu_flags`: what the run log records.

``MGVSR_BF16=0`` in the environment makes every device answer "no native bfloat16" (the fp32
comparisons and the fallback's tests); ``MGVSR_BF16=1`` makes the CPU answer yes.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from mgvsr.errors import MgvsrError

BF16_ENV = "MGVSR_BF16"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 /proc/cpuinfo flags of native bfloat16 arithmetic
CUDA_BF16_CAPABILITY = (8, 0)  # Ampere and later compute bfloat16 natively
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; a named CUDA device that torch cannot see is an error."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MgvsrError(f"device {str(name)!r} asked for, but torch sees no CUDA device")
    return device


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``); empty where unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bfloat16 natively: AVX512-BF16 or AMX-BF16 (x86), BF16 (Arm).

    Elsewhere oneDNN emulates bfloat16 with fp32 arithmetic plus conversions, which is slower than
    fp32.  ``MGVSR_BF16=0`` (or ``1``) in the environment overrides the detection.
    """
    forced = os.environ.get(BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # torch's own cpuinfo probes
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    flags = cpu_flags()
    return bool(flags & set(CPU_BF16_FLAGS)) or ("bf16" in flags and platform.machine() in ("aarch64", "arm64"))


def cuda_capability(device: torch.device) -> tuple[int, int]:
    """The compute capability of CUDA ``device`` (``(7, 0)`` for a V100, ``(9, 0)`` for an H100)."""
    return torch.cuda.get_device_capability(device)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` itself computes bfloat16 natively: a CUDA device of compute capability
    :data:`CUDA_BF16_CAPABILITY` or more (``torch.cuda.is_bf16_supported()`` also says yes where
    bfloat16 is only emulated, on a V100 or T4), a CPU of :func:`cpu_bf16_native`.  ``MGVSR_BF16=0``
    says no for every device."""
    if os.environ.get(BF16_ENV) == "0":
        return False
    if device.type == "cuda":
        return tuple(cuda_capability(device)) >= CUDA_BF16_CAPABILITY
    return device.type == "cpu" and cpu_bf16_native()


def resolve_precision(device: torch.device, amp: bool) -> str:
    """The arithmetic a run uses: ``"fp32"`` without ``amp``; with it, ``"bf16"`` autocast where the
    device computes in bfloat16 (:func:`bf16_supported`), ``"fp16"`` (with loss scaling) on CUDA
    devices without it, ``"fp32"`` elsewhere (a CPU without native bfloat16 would emulate it,
    slower than fp32: :func:`precision_note` says so)."""
    if not amp:
        return "fp32"
    if bf16_supported(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "fp32"


def precision_note(device: torch.device, amp: bool, fp32_inside: str = "") -> str:
    """One line saying which arithmetic :func:`resolve_precision` chose and why; ``fp32_inside``: what of the
    model runs in fp32 inside the autocast region (:func:`mgvsr.models.protocol.fp32_in_autocast`), said
    where autocast is on."""
    precision = resolve_precision(device, amp)
    if not amp:
        return "precision fp32"
    inside = f"; {fp32_inside} in fp32 inside the autocast region" if fp32_inside else ""
    if precision == "bf16":
        what = ("a CUDA device with native bfloat16 (compute capability >= 8.0)" if device.type == "cuda"
                else "a CPU with native bfloat16 (AVX512-BF16/AMX)")
        return f"precision bf16: autocast on {what}; loss, optimizer state and metrics in fp32{inside}"
    if precision == "fp16":
        major, minor = cuda_capability(device)
        return (f"precision fp16: autocast with loss scaling (this CUDA device, compute capability {major}.{minor}, "
                f"has no native bfloat16){inside}")
    why = (f"{BF16_ENV}=0 is set" if os.environ.get(BF16_ENV) == "0" else
           "this CPU does not compute bfloat16 natively (no AVX512-BF16 or AMX), emulated it is slower than fp32"
           if device.type == "cpu" else f"no mixed precision on {device.type}")
    return f"precision fp32: mixed precision was asked for, but {why}"


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CUDA_WORKERS = 4  # loader processes per GPU: the paper-scale shapes need about this many (docs/benchmarks.md)


def default_workers(device: torch.device) -> int:
    """Data-loader worker processes per device where a run does not say: none on a CPU (the loader and the
    training share its cores; the sample clips are decoded in memory), :data:`CUDA_WORKERS` per GPU."""
    return CUDA_WORKERS if device.type == "cuda" else 0


def compute_settings(device: torch.device) -> dict:
    """Settings that change what "fp32" computes and how fast, as a run log records them: on CUDA whether
    matrix products and cuDNN convolutions may use TF32 (Ampere and later: cuDNN's default for
    convolutions) and whether cuDNN benchmarks its algorithms; on a CPU the threads torch uses."""
    if device.type == "cuda":
        return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_conv": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark}
    return {"threads": torch.get_num_threads()}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else what :mod:`platform` knows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The device's name as a run log records it: the GPU's (``"NVIDIA H100 80GB HBM3"``) or the CPU's
    model with the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()}, {torch.get_num_threads()} threads)"
