"""The proxy's parts on synthetic features: recall arithmetic, batch schedules, input maps, training."""

import numpy as np
import pytest
import torch

from curation_assets.evaluation.inputs import fit_input_map
from curation_assets.evaluation.protocol import eval_targets
from curation_assets.evaluation.proxy import (
    TrainingView,
    batch_schedule,
    chance_recall,
    retrieval_recall,
    train_heads,
)
from curation_assets.evaluation.sensitivity import shuffled_view
from curation_assets.evaluation.settings import ProxyTraining
from curation_assets.evaluation.synthetic import synthetic_pairs

FAST = ProxyTraining(steps=150, batch_size=64, seeds=[0, 1, 2], embed_dim=32, input_dim=None, learning_rate=3e-3)


def _unit(rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return torch.nn.functional.normalize(x, dim=-1).unsqueeze(0)


def test_recall_counts_any_caption_of_an_image_and_ranks_ties_against_the_positive():
    # Three images along the axes; four captions: image 0 has two (one matching, one pointing at
    # image 2), image 1 one matching caption, image 2 one caption pointing at image 1.
    images = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    texts = _unit([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0]])
    text_image = np.array([0, 0, 1, 2])
    r = retrieval_recall(images, texts, text_image, ks=(1, 2))
    # i2t@1: image 0 hit (caption 0); image 1: captions 2 and 3 tie at the top, its own (2) ties
    # with a negative (3) -> strict rank 1 -> miss at 1, hit at 2; image 2: its caption 3 scores 0,
    # caption 1 (image 0's) scores 1 -> miss at 1.
    assert r["i2t_r@1"][0] == pytest.approx(1 / 3)
    # t2i@1: caption 0 -> image 0 hit; caption 1 -> best image 2, not 0: miss; caption 2 -> image 1
    # hit; caption 3 -> best image 1, not 2: miss.
    assert r["t2i_r@1"][0] == pytest.approx(2 / 4)
    assert r["mean_r@1"][0] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_constant_embeddings_never_beat_chance():
    images = torch.ones(1, 20, 8)
    texts = torch.ones(1, 20, 8)
    r = retrieval_recall(images, texts, np.arange(20))
    assert r["i2t_r@5"][0] == 0.0 and r["t2i_r@5"][0] == 0.0  # every tie ranks the positive last


def test_chance_recall_matches_a_random_ranking():
    text_image = np.repeat(np.arange(30), 5)
    chance = chance_recall(text_image, 5)
    assert chance["t2i_r@5"] == pytest.approx(5 / 30)
    rng = np.random.default_rng(0)
    hits = [bool(set(rng.choice(150, 5, replace=False).tolist()) & set(range(5))) for _ in range(20000)]
    assert chance["i2t_r@5"] == pytest.approx(np.mean(hits), abs=0.01)


def test_batch_schedule_covers_each_epoch_once_and_is_deterministic_per_seed():
    schedule = batch_schedule(10, steps=7, batch_size=3, seed=4)
    assert schedule.shape == (7, 3)
    # 3 batches per epoch (the tenth row is dropped): each epoch's rows are distinct.
    for epoch in range(2):
        rows = schedule[3 * epoch : 3 * epoch + 3].ravel()
        assert len(set(rows.tolist())) == 9
    assert np.array_equal(schedule, batch_schedule(10, 7, 3, seed=4))
    assert not np.array_equal(schedule, batch_schedule(10, 7, 3, seed=5))
    with pytest.raises(ValueError, match="exceeds"):
        batch_schedule(4, 1, 5, seed=0)


def test_input_map_centres_and_keeps_the_top_principal_directions():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 6)) * np.array([10, 5, 0.1, 0.1, 0.1, 0.1]) + np.array([0, 0, 50, 0, 0, 0])
    features = base.astype(np.float16)
    reduced = fit_input_map([features[:300], features[300:]], dim=2)
    assert reduced.out_dim == 2
    basis = reduced.basis.numpy()
    assert np.allclose(basis.T @ basis, np.eye(2), atol=1e-4)
    # The two high-variance axes span the kept space; the constant offset is centred away.
    assert np.abs(basis[[0, 1]]).sum(0).min() > 0.9
    prepared = reduced.prepare(features).float()
    assert prepared.mean(0).abs().max() < 1e-2
    assert torch.allclose(prepared, reduced.apply(features), atol=1e-2)
    assert fit_input_map([features], dim=None).basis is None
    again = fit_input_map([features[:300], features[300:]], dim=2)
    assert torch.equal(again.basis, reduced.basis)


@pytest.fixture(scope="module")
def world():
    train = synthetic_pairs("train", 200, captions_per_image=2, noise=0.6, seed=1)
    evaluation = synthetic_pairs("eval", 60, captions_per_image=2, noise=0.6, seed=2)
    image_map = fit_input_map([train.images], None)
    text_map = fit_input_map([train.texts], None)
    eval_images, eval_texts, text_image = eval_targets(evaluation)
    return {
        "train": train,
        "inputs": (image_map.prepare(train.images), text_map.prepare(train.texts)),
        "eval": (image_map.prepare(eval_images), text_map.prepare(eval_texts), text_image),
    }


def _score(world, views, seeds, settings=FAST):
    heads = train_heads(*world["inputs"], world["train"].image_groups(), views, seeds, settings)
    images, texts, text_image = world["eval"]
    return retrieval_recall(heads.embed_images(images), heads.embed_texts(texts), text_image), heads


def test_training_learns_the_pairing_and_shuffling_destroys_it(world):
    size = len(world["train"])
    clean, heads = _score(world, [TrainingView.whole(size)] * 3, [0, 1, 2])
    groups = world["train"].image_groups()
    shuffled, _ = _score(world, [shuffled_view(groups, 1.0, s) for s in (0, 1, 2)], [0, 1, 2])
    chance = chance_recall(world["eval"][2], 5)["mean_r@5"]
    assert clean["mean_r@5"].min() > 3 * chance
    assert shuffled["mean_r@5"].max() < clean["mean_r@5"].min() / 2
    assert heads.final_loss.shape == (3,) and heads.temperature.shape == (3,)


def test_a_seed_gives_the_same_result_alone_or_with_other_seeds(world):
    size = len(world["train"])
    together, _ = _score(world, [TrainingView.whole(size)] * 3, [7, 3, 9])
    alone, _ = _score(world, [TrainingView.whole(size)], [3])
    assert together["mean_r@5"][1] == pytest.approx(alone["mean_r@5"][0], abs=0.02)
    repeat, _ = _score(world, [TrainingView.whole(size)], [3])
    assert repeat["mean_r@5"][0] == alone["mean_r@5"][0]  # deterministic per seed
    assert len(set(together["mean_r@1"].round(6).tolist())) > 1  # seeds really differ


def test_fixed_temperature_is_kept(world):
    size = len(world["train"])
    settings = FAST.model_copy(update={"temperature": 0.05, "steps": 5})
    _, heads = _score(world, [TrainingView.whole(size)] * 2, [0, 1], settings)
    assert torch.allclose(heads.temperature, torch.tensor([0.05, 0.05]))
