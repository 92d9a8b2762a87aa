"""KenLM perplexity of each text, for Data-Juicer's perplexity_filter, with a model the user supplies.

Data-Juicer scores with CCNet's KenLM models (`<lang>.arpa.bin` plus the sentencepiece model
`<lang>.sp.model` they were trained on) and this follows its formula: over the text's lines,
perplexity = 10 ** (-(sum of KenLM log10 scores) / (words + one end-of-sentence per line)), where the
words are sentencepiece pieces when a tokenizer is given and whitespace tokens otherwise (blank
lines are skipped). CCNet trained its models on normalised text (lowercased, accents removed, digits
folded to 0, Unicode punctuation mapped to ASCII); `normalize` (on by default) does the same before
scoring, so a CCNet model sees what it was trained on. Data-Juicer scores the raw text, so its
perplexities of the same text with the same model run higher: re-derive `max_ppl` from the analysis.

No model ships with the project: `perplexity_filter` is not in the default recipe, and asking for it
without a model (or without the `kenlm` package) fails at once, naming the recipe field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation_assets.models.availability import ModelUnavailable

RECIPE_FIELD = "models.perplexity"

# CCNet's text normalisation (cc_net/text_normalizer.py), which its KenLM models were trained on.
_UNICODE_PUNCTUATION = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"', "」": '"',
    "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")",
    "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">",
    "【": "[", "】": "]", "％": "%", "►": "-",
}  # fmt: skip
_PUNCTUATION = re.compile(f"[{''.join(re.escape(char) for char in _UNICODE_PUNCTUATION)}]")
_DIGITS = re.compile(r"\d")
_NON_PRINTING = re.compile(f"[{''.join(map(chr, [*range(0, 32), *range(127, 160)]))}]")


class PerplexityModel(BaseModel):
    """Recipe `models.perplexity`: the user's KenLM model for perplexity_filter (none by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        default=None,
        description="KenLM model file (.arpa or .bin), e.g. CCNet's en.arpa.bin; required by perplexity_filter",
    )
    tokenizer: str | None = Field(
        default=None,
        description="sentencepiece model the LM was trained on (CCNet's en.sp.model); none: whitespace words",
    )
    normalize: bool = Field(
        default=True, description="CCNet's normalisation before scoring (lowercase, no accents, digits as 0)"
    )


@dataclass
class LoadedLanguageModel:
    model: Any  # kenlm.Model
    tokenizer: Any | None  # sentencepiece.SentencePieceProcessor
    normalize: bool
    identity: str
    random_init: bool = False  # the user's trained model: scores always mean something
    load_seconds: float = 0.0


def load_language_model(spec: PerplexityModel) -> LoadedLanguageModel:
    """Load the recipe's KenLM model, or fail at once with what to set or install."""
    if spec.model is None:
        raise ModelUnavailable(
            f"perplexity_filter needs a KenLM language model: set {RECIPE_FIELD}.model to a .arpa or .bin file "
            "(Data-Juicer uses CCNet's <lang>.arpa.bin), or remove perplexity_filter from the recipe"
        )
    path = Path(spec.model).expanduser()
    if not path.is_file():
        raise ModelUnavailable(f"{RECIPE_FIELD}.model: the KenLM model {path} does not exist")
    try:
        import kenlm
    except ImportError:
        raise ModelUnavailable(
            f"{RECIPE_FIELD}.model is set but the kenlm package is not installed: `pip install kenlm` "
            "(it compiles KenLM's Python module, which needs a C++ compiler)"
        ) from None
    tokenizer = None
    if spec.tokenizer is not None:
        tokenizer_path = Path(spec.tokenizer).expanduser()
        if not tokenizer_path.is_file():
            raise ModelUnavailable(f"{RECIPE_FIELD}.tokenizer: the sentencepiece model {tokenizer_path} does not exist")
        try:
            import sentencepiece
        except ImportError:
            raise ModelUnavailable(
                f"{RECIPE_FIELD}.tokenizer is set but the sentencepiece package is not installed: "
                "`pip install sentencepiece`"
            ) from None
        tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_path))
    identity = f"kenlm:{path.name}" + (f"+sentencepiece:{Path(spec.tokenizer).name}" if spec.tokenizer else "")
    return LoadedLanguageModel(kenlm.Model(str(path)), tokenizer, spec.normalize, identity)


def ccnet_normalize(line: str) -> str:
    """CCNet's normalisation: strip, lowercase, accents removed, digits to 0, punctuation to ASCII."""
    line = line.strip().lower()
    line = "".join(char for char in unicodedata.normalize("NFD", line) if unicodedata.category(char) != "Mn")
    line = _DIGITS.sub("0", line)
    line = _PUNCTUATION.sub(lambda match: _UNICODE_PUNCTUATION[match.group()], line)
    return _NON_PRINTING.sub("", line)


def perplexities(texts: Sequence[str | None], language_model: LoadedLanguageModel) -> np.ndarray:
    """Perplexity per text, float32, in input order; a text without words gets 0.0 (Data-Juicer's)."""
    values = np.zeros(len(texts), dtype=np.float32)
    for row, text in enumerate(texts):
        log10_total, length = 0.0, 0
        for line in (text or "").splitlines():
            if language_model.normalize:
                line = ccnet_normalize(line)
            if language_model.tokenizer is not None:
                line = " ".join(language_model.tokenizer.encode(line, out_type=str))
            words = line.split()
            if not words:
                continue
            log10_total += language_model.model.score(" ".join(words), bos=True, eos=True)
            length += len(words) + 1  # + the end-of-sentence token KenLM scored
        values[row] = 10.0 ** (-log10_total / length) if length else 0.0
    return values
