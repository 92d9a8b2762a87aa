"""The recipe: section fingerprints, files hashed by content, views that refuse undeclared sections, and
random weights refused under the pretrained profile."""

import pytest

from curation_assets import registry
from curation_assets.models.availability import ModelUnavailable
from curation_assets.models.clip import load_clip
from curation_assets.models.heads import load_aesthetics_head
from curation_assets.recipe import DEFAULT_RECIPE, AestheticsModel, ClipModel, RecipeError, load_recipe
from curation_assets_tests.helpers import smoke_recipe


def write(tmp_path, text: str, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_fingerprint_follows_only_its_sections():
    smoke = smoke_recipe()
    other_filters = smoke.model_copy(update={"filters": []})
    assert smoke.fingerprint("models.clip") == other_filters.fingerprint("models.clip")
    assert smoke.fingerprint("filters") != other_filters.fingerprint("filters")


def test_editing_the_dsir_target_file_restales_the_selection_only(tmp_path):
    target = write(tmp_path, "a red circle\n", "target.txt")
    path = write(
        tmp_path,
        "models: {profile: smoke, clip: {model: smoke-ViT-tiny, pretrained: null}}\n"
        "selectors:\n  dsir_selector: {target: target.txt, fraction: 0.5}\n",
    )
    before = load_recipe(path)
    selected, filtered = (
        registry.code_version(registry.SELECTED, before),
        registry.code_version(registry.FILTERED, before),
    )
    target.write_text("a blue square\n")
    after = load_recipe(path)
    assert registry.code_version(registry.SELECTED, after) != selected
    assert registry.code_version(registry.FILTERED, after) == filtered
    target.unlink()
    with pytest.raises(RecipeError, match="selectors.dsir_selector.target names .* which is not a file"):
        registry.code_version(registry.SELECTED, after)


def test_a_view_gives_declared_sections_and_refuses_the_rest():
    view = smoke_recipe().view(("recaption", "models.captioner"))
    assert view.recaption.band.field_key == "clip_similarity"
    assert view.models.captioner.num_candidates == 2
    with pytest.raises(AttributeError, match="'models.clip' is not among the sections this table declares"):
        _ = view.models.clip
    with pytest.raises(AttributeError, match="'filters'"):
        _ = view.filters


@pytest.mark.parametrize(
    ("models", "line", "field"),
    [
        ("  clip: {model: ViT-B-32, pretrained: null}\n", 3, "models.clip.pretrained"),
        ("  aesthetics: {weights: smoke}\n", 3, "models.aesthetics.weights"),
        ("  watermark:\n    weights: smoke\n", 4, "models.watermark.weights"),
    ],
)
def test_a_pretrained_recipe_that_would_load_random_weights_fails_at_load(tmp_path, models, line, field):
    path = write(tmp_path, "models:\n  profile: pretrained\n" + models)
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    message = str(raised.value)
    assert f"line {line}: {field}" in message and "profile: smoke" in message


def test_the_packaged_recipes_load():
    assert load_recipe(DEFAULT_RECIPE).models.profile == "pretrained"
    assert smoke_recipe().models.profile == "smoke"


def test_loaders_refuse_random_weights_outside_the_smoke_profile():
    with pytest.raises(ModelUnavailable, match="smoke profile only"):
        load_clip(ClipModel(model="smoke-ViT-tiny", pretrained=None), "pretrained", device="cpu")
    with pytest.raises(ModelUnavailable, match="smoke profile only"):
        load_aesthetics_head(AestheticsModel(weights="smoke"), embed_dim=8, profile="pretrained")


def test_models_say_whether_their_weights_are_random(tmp_path):
    import torch

    clip = load_clip(ClipModel(model="smoke-ViT-tiny", pretrained=None), "smoke", device="cpu")
    assert clip.random_init
    checkpoint = tmp_path / "clip.pt"
    torch.save(clip.model.state_dict(), checkpoint)
    # The same tiny architecture with weights from a file is what a user's checkpoint is: not random.
    loaded = load_clip(ClipModel(model="smoke-ViT-tiny", checkpoint=str(checkpoint)), "smoke", device="cpu")
    assert not loaded.random_init


def test_recaption_conditions_and_score_names_are_checked_at_load(tmp_path):
    percentile = write(
        tmp_path,
        "recaption:\n  image_conditions:\n    - image_text_similarity_filter: {min_score: p10}\n",
    )
    with pytest.raises(RecipeError, match="line 2: recaption.image_conditions: .*numbers, not percentiles"):
        load_recipe(percentile)
    unknown = write(tmp_path, "recaption:\n  band: {field_key: clip_simlarity}\n", "unknown.yaml")
    with pytest.raises(RecipeError, match="'clip_simlarity' is not a caption score; known: aesthetics"):
        load_recipe(unknown)


@pytest.mark.parametrize(
    "text, moved",
    [
        ("curated:\n  repeat: 2\n", "curated.repeat (caption)"),
        ("text:\n  repeat: 2\n", "text.repeat (text)"),
        ("interleaved:\n  repeat: 3\n", "interleaved.repeat (interleaved)"),
    ],
)
def test_a_recipe_repeating_a_pool_the_old_way_is_told_where_it_moved(tmp_path, text, moved):
    path = tmp_path / "old.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match="moved to the mix: set mix.max_repeat") as error:
        load_recipe(path)
    assert moved in str(error.value)


def test_mix_weights_must_name_a_score_of_that_kind(tmp_path):
    path = tmp_path / "weights.yaml"
    path.write_text("mix:\n  weight_by: {caption: clip_similarity, text: language_score}\n")
    assert load_recipe(path).mix.weight_column("caption") == "clip_similarity"
    path.write_text("mix:\n  weight_by: {text: clip_similarity}\n")
    with pytest.raises(RecipeError, match="not a score the text index holds; choose one of .*language_score"):
        load_recipe(path)
