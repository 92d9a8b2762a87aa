"""Small heads over stored CLIP image embeddings: no image is decoded again for these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from curation_assets.models.availability import WeightsMismatch, fetch_weights, random_weights
from curation_assets.recipe import AestheticsModel


def _mlp(dim: int) -> nn.Module:
    # The "improved aesthetic predictor" MLP (LAION): 1024-128-64-16-1 with dropout, no activations.
    return nn.Sequential(
        nn.Linear(dim, 1024),
        nn.Dropout(0.2),
        nn.Linear(1024, 128),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.Dropout(0.1),
        nn.Linear(64, 16),
        nn.Linear(16, 1),
    )


@dataclass
class AestheticsHead:
    module: nn.Module
    identity: str
    random_init: bool
    load_seconds: float = 0.0

    @torch.inference_mode()
    def score(self, image_embeddings: np.ndarray) -> np.ndarray:
        """LAION aesthetic score (about 1-10 for real weights) from L2-normalised image embeddings."""
        features = torch.from_numpy(np.asarray(image_embeddings, dtype=np.float32))
        return self.module(features).squeeze(-1).numpy()


def load_aesthetics_head(spec: AestheticsModel, embed_dim: int, profile: str) -> AestheticsHead:
    random_init = random_weights(spec.weights, profile, "models.aesthetics")
    if random_init:
        torch.manual_seed(0)  # reproducible random weights
    module = nn.Linear(embed_dim, 1) if spec.head == "linear" else _mlp(embed_dim)
    if random_init:
        return AestheticsHead(module.eval(), f"aesthetics:{spec.head}@random-init-seed0", random_init=True)
    state = torch.load(fetch_weights(spec.weights, "aesthetics head"), map_location="cpu", weights_only=True)
    if spec.head == "mlp":
        state = {key.removeprefix("layers."): value for key, value in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise WeightsMismatch(
            f"aesthetics weights {spec.weights} do not fit a {spec.head} head over {embed_dim}-d CLIP embeddings "
            f"(the head must be trained on the same CLIP model as models.clip): {error}"
        ) from None
    return AestheticsHead(module.eval(), f"aesthetics:{spec.head}@{spec.weights}", random_init=False)
