"""Where models run: cuda, then mps, then cpu, unless told; and at which precision."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {requested!r} was asked for but CUDA is not available here; use device: auto or cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bfloat16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): there bfloat16 runs
    the model's matrix products about twice as fast as float32. Elsewhere oneDNN would emulate it,
    slower than float32, so it is not used. (torch exposes these probes only as torch.cpu._is_*.)"""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def inference_dtype(device: torch.device, half_precision: bool = True) -> torch.dtype:
    """With half_precision: float16 on CUDA, bfloat16 on a CPU that computes it natively (scores move by
    about 1e-3, rankings barely; measured by `make bench BENCH=scoring_pass`); float32 everywhere else, and
    always when half_precision is False."""
    if half_precision and device.type == "cuda":
        return torch.float16
    if half_precision and device.type == "cpu" and cpu_has_native_bfloat16():
        return torch.bfloat16
    return torch.float32


def precision_name(dtype: torch.dtype) -> str:
    """The short name open_clip's `precision` argument and our partition notes use."""
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")
