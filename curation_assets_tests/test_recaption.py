"""Recaptioning decisions on tiny tables, and the smoke captioner through the real loading code."""

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from curation_assets.models.captioner import build_smoke_captioner, generate_kwargs, load_captioner
from curation_assets.recaption.decisions import best_candidates, entrants, keep_new_caption, recaption_table
from curation_assets.recipe import CaptionerModel, Recaption
from curation_assets.selection.filters import resolve, rules_of

SCORES = pl.DataFrame(
    {
        "sample_id": ["in", "low", "high", "small", "dup", "nan"],
        "caption": ["a", "b", "c", "d", "e", "f"],
        "clip_similarity": [0.20, 0.005, 0.30, 0.15, 0.10, float("nan")],
        "width": [128, 128, 128, 16, 128, 128],
        "height": [128, 128, 128, 16, 128, 128],
        "duplicate_of": [None, None, None, None, "in", None],
    },
    schema_overrides={"clip_similarity": pl.Float32, "width": pl.Int32, "height": pl.Int32},
)
SPEC = Recaption.model_validate(
    {
        "band": {"min": 0.01, "max": 0.28},
        "image_conditions": [{"image_shape_filter": {"min_width": 64, "min_height": 64}}],
    }
)


def test_only_pairs_in_the_band_with_good_unduplicated_images_enter():
    rules = resolve(rules_of(SPEC.image_conditions), None)
    assert entrants(SCORES, SPEC, rules)["sample_id"].to_list() == ["in"]
    with_duplicates = SPEC.model_copy(update={"skip_duplicates": False})
    assert entrants(SCORES, with_duplicates, rules)["sample_id"].to_list() == ["in", "dup"]


def test_band_on_another_score():
    spec = Recaption.model_validate({"band": {"field_key": "width", "min": 0, "max": 20}})
    assert entrants(SCORES, spec, [])["sample_id"].to_list() == ["small"]


def test_the_best_candidate_wins_and_must_clear_the_bar_and_beat_the_original():
    assert best_candidates(np.array([[0.1, 0.4, 0.4], [0.5, 0.2, 0.1]])).tolist() == [1, 0]
    kept, reasons = keep_new_caption(np.array([0.20, 0.20, 0.30]), np.array([0.35, 0.27, 0.29]), keep_min_score=0.28)
    assert kept.tolist() == [True, False, False]
    assert reasons == [
        "kept: clears the bar and beats the original",
        "below keep_min_score",
        "no better than the original",
    ]
    assert keep_new_caption(np.array([0.1]), np.array([0.28]), 0.28)[0].tolist() == [
        False
    ]  # strictly above, like "> 0.28"


def test_recaption_table_keeps_full_provenance():
    entered = SCORES.filter(pl.col("sample_id").is_in(["in", "low"]))
    table = recaption_table(
        entered, [["x1", "x2"], ["y1", "y2"]], np.array([[0.3, 0.4], [0.1, 0.05]]), 0.28, "blip@test"
    )
    row = table.row(0, named=True)
    assert row["original_caption"] == "a" and row["new_caption"] == "x2"
    assert row["candidates"] == ["x1", "x2"] and row["candidate_scores"] == pytest.approx([0.3, 0.4])
    assert row["score_before"] == pytest.approx(0.2) and row["score_after"] == pytest.approx(0.4)
    assert row["captioner"] == "blip@test" and row["kept"]
    assert not table.row(1, named=True)["kept"]


def test_smoke_captioner_saved_to_disk_loads_by_path_and_generates_candidates(tmp_path):
    folder = build_smoke_captioner(tmp_path / "captioner")
    # As a user with local weights would: real (if tiny) weights from a folder, so not random.
    captioner = load_captioner(CaptionerModel(model=str(folder)), "pretrained", device="cpu")
    assert captioner.identity == f"transformers:{folder}" and not captioner.random_init
    pixels = torch.stack(
        [captioner.preprocess(Image.new("RGB", (50, 40), colour)) for colour in ((200, 0, 0), (0, 0, 200))]
    )
    beams = captioner.generate(pixels, CaptionerModel(max_new_tokens=6, num_beams=3, num_candidates=3))
    assert [len(row) for row in beams] == [3, 3] and all(isinstance(text, str) for row in beams for text in row)
    sampled = captioner.generate(
        pixels, CaptionerModel(prompt="a photo of", max_new_tokens=6, do_sample=True, num_candidates=2)
    )
    assert [len(row) for row in sampled] == [2, 2]
    assert not any(text.startswith("a photo of") for row in sampled for text in row)  # the prompt is not echoed back


def test_generation_settings_map_to_generate_arguments():
    assert generate_kwargs(CaptionerModel(num_beams=2, num_candidates=4))["num_beams"] == 4  # beams >= candidates
    sampling = generate_kwargs(CaptionerModel(do_sample=True, temperature=0.7, num_candidates=5))
    assert sampling["do_sample"] and sampling["temperature"] == 0.7 and sampling["num_return_sequences"] == 5
