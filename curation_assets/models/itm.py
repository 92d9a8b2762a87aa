"""Image-text matching with BLIP (transformers): a hub id or local folder, or a tiny smoke BLIP."""

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
from curation_assets.recipe import ItmModel

SMOKE_VERSION = 1  # bump when build_smoke_itm changes, so cached smoke folders are rebuilt


@dataclass
class LoadedItm:
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    image_size: int
    identity: str
    load_seconds: float
    random_init: bool

    @torch.inference_mode()
    def match_probability(self, pixels: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """P(image and caption match) from BLIP's ITM head (softmax over [no match, match])."""
        text = self.processor.tokenizer(captions, padding=True, truncation=True, max_length=64, return_tensors="pt")
        output = self.model(
            pixel_values=pixels.to(self.device, self.dtype),
            input_ids=text.input_ids.to(self.device),
            attention_mask=text.attention_mask.to(self.device),
            use_itm_head=True,
        )
        return torch.softmax(output.itm_score.float(), dim=-1)[:, 1]

    def preprocess(self, image) -> torch.Tensor:
        return self.processor.image_processor(images=image, return_tensors="pt").pixel_values[0]


def build_smoke_itm(folder: str | Path) -> Path:
    """Write a tiny random BLIP ITM model plus processor to `folder`, loadable by path like any
    checkpoint. Same classes as Salesforce/blip-itm-*, a few layers of width 32, a toy WordPiece vocab."""
    from transformers import BlipForImageTextRetrieval

    folder = Path(folder)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]", *string.ascii_lowercase, *string.digits]
    vocab += ["##" + c for c in string.ascii_lowercase + string.digits] + list(".,;:!?'\"-()")
    model, processor = tiny_blip(
        vocab, BlipForImageTextRetrieval, dict(bos_token_id=5, sep_token_id=3), image_text_hidden_size=32
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def load_itm(spec: ItmModel, profile: str, device: str = "auto", half_precision: bool = True) -> LoadedItm:
    """A hub id or local folder; under the smoke profile, a name that is not a folder builds a tiny
    random BLIP of the same class."""
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    started = time.monotonic()
    target = pick_device(device)
    dtype = inference_dtype(target, half_precision)
    location = spec.model
    built_here = profile == "smoke" and not Path(location).exists()
    if built_here:
        # The smoke model is built from config into a folder, then loaded through the same path as real weights.
        location = str(smoke_folder(f"blip-itm-v{SMOKE_VERSION}", build_smoke_itm))
    with hub_access(f"BLIP ITM model {spec.model}"):
        processor = BlipProcessor.from_pretrained(location)
        model = BlipForImageTextRetrieval.from_pretrained(location, dtype=dtype)
    model.to(target).eval()
    size = processor.image_processor.size
    return LoadedItm(
        model=model,
        processor=processor,
        device=target,
        dtype=dtype,
        image_size=int(size.get("height", 384)),
        identity=f"transformers:{spec.model}" + ("@random-init-seed0" if built_here else ""),
        load_seconds=time.monotonic() - started,
        random_init=built_here,
    )
