"""The recipe's `evaluation` section: defaults, and impossible values refused with a useful message."""

import pytest
from pydantic import ValidationError

from curation_assets.evaluation.settings import EXTERNAL_PLACEHOLDERS, Evaluation, External


def test_defaults_are_the_documented_protocol():
    settings = Evaluation()
    assert settings.encoders.image.model == "efficientnet-lite0" and settings.encoders.text.model == "all-MiniLM-L6-v2"
    assert (settings.proxy.steps, settings.proxy.batch_size, settings.proxy.seeds) == (300, 128, [0, 1, 2, 3, 4])
    assert settings.baselines.random and settings.baselines.all
    assert settings.contamination.phash_max_distance == 4 and settings.sensitivity.shuffle_fraction == 0.5
    assert settings.external is None and settings.eval_sets == {}


def test_every_field_says_what_it_does():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            annotation = field.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    walk(candidate)

    walk(Evaluation)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"proxy": {"seeds": [1, 1, 2]}}, "seeds must be distinct"),
        ({"proxy": {"seeds": [1]}}, "at least 2"),
        ({"proxy": {"steps": 0}}, "greater than or equal to 1"),
        ({"encoders": {"image": {"model": "resnet50"}}}, "unknown image encoder 'resnet50'"),
        ({"encoders": {"image": {"model": "timm/"}}}, "names no model"),
        ({"sensitivity": {"metric": "recall"}}, "unknown metric 'recall'"),
        ({"eval_sets": {"co/co": {"path": "x.jsonl"}}}, "must be 1-64 letters"),
        ({"proxy": {"stepz": 3}}, "Extra inputs are not permitted"),
        ({"external": {"command": "train --data {llava_jsn}"}}, "unknown placeholder(s) {llava_jsn}"),
        ({"external": {"command": "train {}"}}, "unknown placeholder(s) {}"),
        ({"external": {"command": "train --x '{output_dir}"}}, "not a valid shell-like line"),
        ({"external": {"command": "train {output_dir"}}, "unbalanced braces"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(section, message):
    with pytest.raises(ValidationError) as error:
        Evaluation.model_validate(section)
    assert message in str(error.value)


def test_sections_are_frozen():
    settings = Evaluation()
    with pytest.raises(ValidationError):
        settings.proxy.steps = 5


def test_external_command_accepts_every_known_placeholder_and_literal_braces():
    command = " ".join(f"--{name} {{{name}}}" for name in EXTERNAL_PLACEHOLDERS) + " --json '{{\"a\": 1}}'"
    assert External(command=command).timeout_s == 24 * 3600
