"""Captioning with any transformers image-to-text model (BLIP, BLIP-2, GIT, LLaVA-style with a
prompt), by hub id or local folder, or a tiny smoke BLIP built from config."""

from __future__ import annotations

import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from curation_assets.models.availability import hub_access
from curation_assets.models.device import inference_dtype, pick_device
from curation_assets.models.smoke import smoke_folder, tiny_blip
from curation_assets.recipe import CaptionerModel

SMOKE_VERSION = 1


def generate_kwargs(spec: CaptionerModel) -> dict[str, Any]:
    """transformers `generate` arguments for the recipe's captioner settings."""
    kwargs: dict[str, Any] = {"max_new_tokens": spec.max_new_tokens, "num_return_sequences": spec.num_candidates}
    if spec.do_sample:
        kwargs.update(do_sample=True, temperature=spec.temperature, top_p=spec.top_p)
    else:
        kwargs.update(do_sample=False, num_beams=max(spec.num_beams, spec.num_candidates))  # beams >= candidates
    return kwargs


@dataclass
class LoadedCaptioner:
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    image_size: int
    identity: str
    load_seconds: float
    random_init: bool

    def preprocess(self, image) -> torch.Tensor:
        return self.processor.image_processor(images=image, return_tensors="pt").pixel_values[0]

    @torch.inference_mode()
    def generate(self, pixels: torch.Tensor, settings: CaptionerModel) -> list[list[str]]:
        """`num_candidates` captions per image, prompt removed, whitespace tidied."""
        inputs: dict[str, Any] = {"pixel_values": pixels.to(self.device, self.dtype)}
        prompt_ids = None
        if settings.prompt:
            text = self.processor.tokenizer([settings.prompt] * len(pixels), return_tensors="pt", padding=True)
            prompt_ids = text.input_ids
            inputs.update(input_ids=text.input_ids.to(self.device), attention_mask=text.attention_mask.to(self.device))
        output = self.model.generate(**inputs, **generate_kwargs(settings))
        if prompt_ids is not None and output.shape[1] >= prompt_ids.shape[1]:
            # Decoder-only models (GIT, LLaVA) echo the prompt; keep only what was generated.
            echoed = prompt_ids.to(output.device).repeat_interleave(settings.num_candidates, dim=0)
            if torch.equal(output[:, : echoed.shape[1]], echoed):
                output = output[:, echoed.shape[1] :]
        texts = [" ".join(t.split()) for t in self.processor.tokenizer.batch_decode(output, skip_special_tokens=True)]
        if settings.prompt:
            texts = [
                t[len(settings.prompt) :].strip() if t.lower().startswith(settings.prompt.lower()) else t for t in texts
            ]
        k = settings.num_candidates
        return [texts[i * k : (i + 1) * k] for i in range(len(pixels))]


def build_smoke_captioner(folder: str | Path) -> Path:
    """A tiny random BLIP captioner (BlipForConditionalGeneration, the class of Salesforce/blip-image-
    captioning-*) with a toy WordPiece vocabulary, saved like any checkpoint folder."""
    from transformers import (
        BlipForConditionalGeneration,
    )

    folder = Path(folder)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "[DEC]",
        *string.ascii_lowercase,
        "a",
        "the",
        "of",
        "on",
        "in",
    ]
    vocab += ["##" + c for c in string.ascii_lowercase] + [
        "red",
        "blue",
        "green",
        "circle",
        "square",
        "photo",
        "dog",
        "cat",
    ]
    vocab = list(dict.fromkeys(vocab))
    text = dict(bos_token_id=5, sep_token_id=3, eos_token_id=3)
    model, processor = tiny_blip(vocab, BlipForConditionalGeneration, text, bos_token="[DEC]")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def load_captioner(
    spec: CaptionerModel, profile: str, device: str = "auto", half_precision: bool = True
) -> LoadedCaptioner:
    """A hub id or local folder; under the smoke profile, a name that is not a folder builds a tiny
    random BLIP captioner."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    started = time.monotonic()
    target = pick_device(device)
    dtype = inference_dtype(target, half_precision)
    model = spec.model
    location = model
    built_here = profile == "smoke" and not Path(location).exists()
    if built_here:
        location = str(smoke_folder(f"blip-captioner-v{SMOKE_VERSION}", build_smoke_captioner))
    with hub_access(f"captioning model {model}"):
        processor = AutoProcessor.from_pretrained(location)
        loaded = AutoModelForImageTextToText.from_pretrained(location, dtype=dtype)
    loaded.to(target).eval()
    size = getattr(processor.image_processor, "size", {}) or {}
    return LoadedCaptioner(
        model=loaded,
        processor=processor,
        device=target,
        dtype=dtype,
        image_size=int(size.get("height") or size.get("shortest_edge") or 384),
        identity=f"transformers:{model}" + ("@random-init-seed0" if built_here else ""),
        load_seconds=time.monotonic() - started,
        random_init=built_here,
    )
