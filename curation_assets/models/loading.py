"""One entry point for every model: `load_model(name, models, runtime)`.

What a model is comes from the recipe's `models` section; how it runs (device, precision) is the
runtime. Every loaded model says what it is (`identity`, recorded as `produced_by` in its tables)
and whether its weights are random (`random_init`): a table's `scores_meaningful` is exactly
`not random_init`, decided by what was loaded, never by the profile's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from curation_assets.recipe import ClipModel, Models


@dataclass(frozen=True)
class Runtime:
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    half_precision: bool = True  # float16 on CUDA, bfloat16 on CPUs with native bfloat16 (device.inference_dtype)


class LoadedModel(Protocol):
    identity: str
    random_init: bool
    load_seconds: float


def clip_embed_dim(spec: ClipModel) -> int:
    """The CLIP embedding width from the architecture's config alone (no weights are loaded)."""
    import open_clip

    from curation_assets.models import clip as _registers_smoke_configs  # noqa: F401

    config = open_clip.get_model_config(spec.model)
    if config is None:
        raise ValueError(f"open_clip has no architecture {spec.model!r} (models.clip.model)")
    return int(config["embed_dim"])


def _clip(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.clip import load_clip

    return load_clip(models.clip, models.profile, runtime.device, runtime.half_precision)


def _itm(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.itm import load_itm

    return load_itm(models.itm, models.profile, runtime.device, runtime.half_precision)


def _watermark(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.watermark import load_watermark

    return load_watermark(models.watermark, models.profile, runtime.device, runtime.half_precision)


def _nsfw(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.nsfw import load_nsfw

    return load_nsfw(models.nsfw, runtime.device)


def _text_embedding(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.text_embedding import load_text_embedder

    return load_text_embedder(models.text_embedding, runtime.device)


def _captioner(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.captioner import load_captioner

    return load_captioner(models.captioner, models.profile, runtime.device, runtime.half_precision)


def _aesthetics(models: Models, runtime: Runtime) -> Any:
    from curation_assets.models.heads import load_aesthetics_head

    # The head reads stored CLIP image embeddings: its width is the CLIP model's.
    return load_aesthetics_head(models.aesthetics, clip_embed_dim(models.clip), models.profile)


def _perplexity(models: Models, runtime: Runtime) -> Any:
    from curation_assets.scoring.perplexity import load_language_model

    return load_language_model(models.perplexity)  # KenLM runs on the CPU


LOADERS: dict[str, Callable[[Models, Runtime], LoadedModel]] = {
    "clip": _clip,
    "itm": _itm,
    "watermark": _watermark,
    "nsfw": _nsfw,
    "text_embedding": _text_embedding,
    "captioner": _captioner,
    "aesthetics": _aesthetics,
    "perplexity": _perplexity,
}


def load_model(name: str, models: Models, runtime: Runtime = Runtime()) -> LoadedModel:
    if name not in LOADERS:
        raise KeyError(f"no model {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](models, runtime)
