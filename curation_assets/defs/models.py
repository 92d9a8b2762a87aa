"""Model resources: each loads its model once per process (per step) and is shared by every shard
the step processes. What a model is comes from the recipe; how it runs (device, batch size,
workers) is resource config, which changes speed, never results."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from curation_assets.recipe import (
    AestheticsModel,
    ClipModel,
    ItmModel,
    NsfwModel,
    Recipe,
    TextEmbeddingModel,
    WatermarkModel,
)
from curation_assets.scoring.image_models import BatchSettings

# Models loaded by this process, by resource class and config.
_LOADED_IN_THIS_PROCESS: dict[str, Any] = {}


class ModelResource(ConfigurableResource):
    profile: str = Field(description="pretrained | smoke (from the recipe)")
    device: str = Field(default="auto", description="auto picks cuda, then mps, then cpu")
    batch_size: int = 64
    num_workers: int = Field(default=2, description="DataLoader workers decoding images while the model runs")
    half_precision: bool = Field(default=True, description="float16 on CUDA")

    def load(self) -> Any:
        raise NotImplementedError

    @property
    def model(self) -> Any:
        """The loaded model: loaded on first use, then shared by every shard and run in this process.

        Lazy, not in setup_for_execution: Dagster sets up every resource bound to a job, and an
        ingest run should not pay for loading five models it never calls."""
        key = f"{type(self).__name__}:{self.model_dump_json()}"
        if key not in _LOADED_IN_THIS_PROCESS:
            loaded = self.load()
            get_dagster_logger().info(f"loaded {loaded.identity} in {getattr(loaded, 'load_seconds', 0.0):.1f}s")
            _LOADED_IN_THIS_PROCESS[key] = loaded
        return _LOADED_IN_THIS_PROCESS[key]

    @property
    def identity(self) -> str:
        return self.model.identity

    @property
    def meaningful(self) -> bool:
        return self.profile != "smoke"

    def batch_settings(self) -> BatchSettings:
        import torch

        return BatchSettings(self.batch_size, self.num_workers, pin_memory=torch.cuda.is_available())


class ClipResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.clip import load_clip

        return load_clip(ClipModel(**self.spec), self.profile, self.device, self.half_precision)


class ItmResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.itm import load_itm

        return load_itm(ItmModel(**self.spec), self.profile, self.device, self.half_precision)


class WatermarkResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.watermark import load_watermark

        return load_watermark(WatermarkModel(**self.spec), self.profile, self.device, self.half_precision)


class NsfwResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.nsfw import load_nsfw

        return load_nsfw(NsfwModel(**self.spec), self.device)

    @property
    def meaningful(self) -> bool:
        return True  # real shipped weights in every profile


class TextEmbeddingResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.text_embedding import load_text_embedder

        return load_text_embedder(TextEmbeddingModel(**self.spec), self.device)

    @property
    def meaningful(self) -> bool:
        return True  # real shipped weights in every profile


class CaptionerResource(ModelResource):
    spec: dict

    def load(self):
        from curation_assets.models.captioner import load_captioner

        return load_captioner(self.spec["model"], self.profile, self.device, self.half_precision)

    def generation(self):
        from curation_assets.models.captioner import GenerationSettings

        return GenerationSettings(**{k: v for k, v in self.spec.items() if k != "model"})


class AestheticsResource(ModelResource):
    """The head needs the CLIP embedding width, known once CLIP's config is read (no weights loaded)."""

    spec: dict
    clip_spec: dict

    def load(self):
        import open_clip

        from curation_assets.models import clip as _registers_smoke_configs  # noqa: F401
        from curation_assets.models.heads import load_aesthetics_head

        config = open_clip.get_model_config(ClipModel(**self.clip_spec).model)
        return load_aesthetics_head(AestheticsModel(**self.spec), config["embed_dim"], self.profile)


def model_resources(recipe: Recipe, **runtime: Any) -> dict[str, ModelResource]:
    """The model resources a recipe asks for; `runtime` (device, batch_size, ...) applies to all."""
    models = recipe.models
    common = {"profile": models.profile, **runtime}
    return {
        "clip": ClipResource(spec=models.clip.model_dump(), **common),
        "itm": ItmResource(spec=models.itm.model_dump(), **common),
        "watermark": WatermarkResource(spec=models.watermark.model_dump(), **common),
        "nsfw": NsfwResource(spec=models.nsfw.model_dump(), **common),
        "text_embedding": TextEmbeddingResource(spec=models.text_embedding.model_dump(), **common),
        "captioner": CaptionerResource(spec=models.captioner.model_dump(), **common),
        "aesthetics": AestheticsResource(
            spec=models.aesthetics.model_dump(), clip_spec=models.clip.model_dump(), **common
        ),
    }
