"""Model resources: each loads its model once per process and shares it with every shard the process
scores. What a model is comes from the recipe (the `models` section, hashed into the code version
of every table that uses it); how it runs (device, batch size, workers) is resource config, which
changes speed, never results."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from curation_assets import registry
from curation_assets.models.loading import LOADERS, Runtime, load_model
from curation_assets.recipe import Models, Recipe
from curation_assets.scoring.batch_settings import CPU_DECODE_CHOICES, BatchSettings

# Models loaded in this process, by resource config; and how many loads each model name took (tests
# use it to show that a multi-shard run loads each model once, not once per shard).
_LOADED_IN_THIS_PROCESS: dict[str, Any] = {}
LOADS: Counter[str] = Counter()
PROXY_ENCODERS = next(iter(registry.PROXY_FEATURES.resources))


class ModelResource(ConfigurableResource):
    name: str = Field(description=f"which model: one of {', '.join(LOADERS)}")
    models: dict = Field(description="the recipe's models section (what to load)")
    device: str = Field(default="auto", description="auto picks cuda, then mps, then cpu")
    batch_size: int = 64
    num_workers: int = Field(default=2, description="DataLoader workers decoding images while the model runs")
    cpu_decode: str = Field(
        default=BatchSettings.cpu_decode,
        pattern=f"^({'|'.join(CPU_DECODE_CHOICES)})$",
        description="who decodes images on the CPU: workers ahead of the models (a GPU's case), threads "
        "between their forwards (models on the CPU), or auto (between when every due model is on the CPU)",
    )
    worker_nice: int = Field(
        default=BatchSettings.worker_nice,
        ge=0,
        description="how far below the model's CPU priority the workers run (Unix nice); 0: the same",
    )
    half_precision: bool = Field(
        default=True, description="float16 on CUDA, bfloat16 on CPUs that compute it natively; false: float32"
    )

    @property
    def model(self) -> Any:
        """The loaded model: loaded on first use, then shared by every shard and run in this process.

        Lazy, not in setup_for_execution: Dagster sets up every resource bound to a job, and an
        ingest run should not pay for loading models it never calls."""
        key = self.model_dump_json()
        if key not in _LOADED_IN_THIS_PROCESS:
            runtime = Runtime(self.device, self.half_precision)
            loaded = load_model(self.name, Models.model_validate(self.models), runtime)
            LOADS[self.name] += 1
            get_dagster_logger().info(f"loaded {loaded.identity} in {loaded.load_seconds:.1f}s")
            _LOADED_IN_THIS_PROCESS[key] = loaded
        return _LOADED_IN_THIS_PROCESS[key]

    def batch_settings(self) -> BatchSettings:
        import torch

        return BatchSettings(
            self.batch_size,
            self.num_workers,
            pin_memory=torch.cuda.is_available(),
            cpu_decode=self.cpu_decode,
            worker_nice=self.worker_nice,
        )


def model_resources(recipe: Recipe, **runtime: Any) -> dict[str, ModelResource]:
    """One resource per model the recipe can name; `runtime` (device, batch_size, ...) applies to all."""
    models = recipe.models.model_dump(mode="json")
    return {name: ModelResource(name=name, models=models, **runtime) for name in LOADERS}


class ResourceModels:
    """The loaded models of a step, served by name to pure computations (shard_work.Models)."""

    def __init__(self, resources: Any):
        self.resources = resources

    def get(self, name: str) -> Any:
        return getattr(self.resources, name).model

    def batch_settings(self, name: str) -> BatchSettings:
        return getattr(self.resources, name).batch_settings()


class ProxyEncodersResource(ConfigurableResource):
    """The proxy eval's frozen encoders (the recipe's `evaluation.encoders`), loaded once per process
    on first use and shared by every shard and run in it."""

    encoders: dict = Field(description="the recipe's evaluation.encoders section (what to load)")
    device: str = Field(default="auto", description="auto picks cuda, then mps, then cpu")
    num_workers: int = Field(default=2, description="DataLoader workers decoding images while the encoder runs")
    half_precision: bool = Field(
        default=True, description="float16 on CUDA, bfloat16 on CPUs that compute it natively; false: float32"
    )

    @property
    def model(self) -> Any:
        from curation_assets.evaluation.encoders import load_encoders
        from curation_assets.evaluation.settings import Encoders

        key = f"proxy_encoders:{self.model_dump_json()}"
        if key not in _LOADED_IN_THIS_PROCESS:
            loaded = load_encoders(Encoders.model_validate(self.encoders), self.device, self.half_precision)
            LOADS[PROXY_ENCODERS] += 1
            get_dagster_logger().info(f"loaded proxy encoders {loaded.identity}")
            _LOADED_IN_THIS_PROCESS[key] = loaded
        return _LOADED_IN_THIS_PROCESS[key]

    def batch_settings(self) -> BatchSettings:
        return BatchSettings(int(self.encoders.get("batch_size", 64)), self.num_workers)


RUNTIME_ENVIRONMENT = {"CURATION_DEVICE": "device", "CURATION_HALF_PRECISION": "half_precision"}


def runtime_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Model runtime settings from the environment, for the code location `make ui` loads:
    CURATION_DEVICE (auto, cpu, cuda, cuda:1, ...) and CURATION_HALF_PRECISION (1/true or 0/false)."""
    runtime: dict[str, Any] = {}
    for variable, setting in RUNTIME_ENVIRONMENT.items():
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if setting == "half_precision":
            flags = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
            if value.lower() not in flags:
                raise ValueError(f"{variable}={value!r}: use 1/true/yes or 0/false/no")
            runtime[setting] = flags[value.lower()]
        else:
            runtime[setting] = value
    return runtime


def proxy_encoder_resources(recipe: Recipe, **runtime: Any) -> dict[str, ProxyEncodersResource]:
    """The proxy eval's encoders, under the resource name the feature table declares; device and
    workers from the same runtime settings as the model resources."""
    kept = {name: value for name, value in runtime.items() if name in ("device", "num_workers", "half_precision")}
    return {PROXY_ENCODERS: ProxyEncodersResource(encoders=recipe.evaluation.encoders.model_dump(mode="json"), **kept)}
