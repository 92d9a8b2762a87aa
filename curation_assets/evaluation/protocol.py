"""One proxy eval run: candidate pools against baselines of equal size, on named eval sets.

Order of work: remove eval duplicates from every training pool (counted), fix one batch size for the
whole run (the configured one, capped by the smallest pool so every pool gets the same steps x
batch compute), train each pool's heads for every seed, score every eval set.

Baselines, trained in the same run with the same budget:
- `random`: for each candidate, as many pairs drawn at random from the unfiltered pool, redrawn per
  seed (so the spread includes the luck of the draw). Same size and same compute as the candidate:
  the difference is only which pairs.
- `all`: the whole unfiltered pool, same steps and batch. It is compute-matched, not size-matched:
  it sees more distinct pairs and repeats each fewer times. When steps x batch is below its size, the
  run sees a uniform sample of that many pairs once each (one epoch is a random permutation), so
  `all` then answers DataComp's question: is the curated pool better than no curation at the same
  compute? With a budget above its size it makes several passes, as every pool does.
- `<pool>_shuffled`: the sensitivity copy, the candidate with part of its captions moved to other
  images, same seeds and budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from curation_assets.evaluation.contamination import remove_contaminated
from curation_assets.evaluation.inputs import fit_input_map
from curation_assets.evaluation.pairs import PairSet
from curation_assets.evaluation.proxy import TrainingView, chance_recall, retrieval_recall, train_heads
from curation_assets.evaluation.sensitivity import sensitivity_check, shuffled_view
from curation_assets.evaluation.settings import RECALL_KS, Evaluation

Log = Callable[[str], None]
SHUFFLED_SUFFIX = "_shuffled"


def budget_pairs(settings: Evaluation) -> int:
    """Pairs one seed sees in a run (steps x batch size). A pool larger than this is, for the proxy,
    the same as a uniform sample of this many of its pairs: callers may load only such a sample."""
    return settings.proxy.steps * settings.proxy.batch_size


def summarize(per_seed: np.ndarray) -> dict:
    values = np.asarray(per_seed, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "per_seed": [round(float(v), 6) for v in values],
    }


def eval_targets(eval_set: PairSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image features of each distinct image, caption features, image index of each caption)."""
    groups = eval_set.image_groups()
    _, first, text_image = np.unique(groups, return_index=True, return_inverse=True)
    return eval_set.images[first], eval_set.texts, text_image.astype(np.int64)


def run_proxy_eval(
    candidates: Mapping[str, PairSet],
    eval_sets: Mapping[str, PairSet],
    settings: Evaluation,
    unfiltered: PairSet | None = None,
    sensitivity_pool: str | None = None,
    log: Log | None = None,
) -> dict:
    """The whole comparison as a JSON-ready dict (see README for the layout).

    `sensitivity_pool` names the candidate that gets the shuffled-caption copy (default: the first)."""
    log = log or (lambda _: None)
    if not candidates:
        raise ValueError("no candidate pool to evaluate")
    if not eval_sets:
        raise ValueError("no eval set: name at least one (recipe evaluation.eval_sets or --eval)")
    started = time.perf_counter()
    seeds = list(settings.proxy.seeds)
    sensitivity_pool = sensitivity_pool or next(iter(candidates))
    if sensitivity_pool not in candidates:
        raise ValueError(f"sensitivity pool {sensitivity_pool!r} is not a candidate ({', '.join(candidates)})")
    for name in candidates:
        if name in ("random", "all", "unfiltered") or name.startswith("random_") or name.endswith(SHUFFLED_SUFFIX):
            raise ValueError(f"candidate name {name!r} is reserved for baselines; rename the pool")

    # 1. Contamination: every training pool against every eval set.
    eval_list = list(eval_sets.values())
    pools: dict[str, dict] = {}
    clean: dict[str, PairSet] = {}
    for name, pairs in [*candidates.items(), *([("unfiltered", unfiltered)] if unfiltered is not None else [])]:
        kept, counts = remove_contaminated(pairs, eval_list, settings.contamination)
        clean[name] = kept
        pools[name] = {"contamination": counts.as_dict()}
        log(f"{name}: {counts.removed} of {counts.pairs_in} pairs duplicate an eval sample and were removed")
    contamination_seconds = time.perf_counter() - started

    # 2. What trains: each job names the (decontaminated) pool it draws from, one view per seed, its role.
    jobs: dict[str, tuple[str, list[TrainingView], str]] = {}
    for name in candidates:
        jobs[name] = (name, [TrainingView.whole(len(clean[name]))] * len(seeds), "candidate")
    if unfiltered is not None and settings.baselines.random:
        for name in candidates:
            label = "random" if len(candidates) == 1 else f"random_{name}"
            size = min(len(clean[name]), len(clean["unfiltered"]))
            views = [_random_view(len(clean["unfiltered"]), size, seed) for seed in seeds]
            jobs[label] = ("unfiltered", views, "random")
    if unfiltered is not None and settings.baselines.all:
        jobs["all"] = ("unfiltered", [TrainingView.whole(len(clean["unfiltered"]))] * len(seeds), "all")
    shuffled_name = sensitivity_pool + SHUFFLED_SUFFIX
    fraction = settings.sensitivity.shuffle_fraction
    groups = {name: pairs.image_groups() for name, pairs in clean.items()}
    shuffled = [shuffled_view(groups[sensitivity_pool], fraction, s) for s in seeds]
    jobs[shuffled_name] = (sensitivity_pool, shuffled, "shuffled")

    smallest = min(len(views[0]) for _, views, _ in jobs.values())
    if smallest < 2:
        empty = [name for name, (_, views, _) in jobs.items() if len(views[0]) < 2]
        raise ValueError(f"pool(s) {empty} have fewer than 2 pairs left to train on")
    batch_size = min(settings.proxy.batch_size, smallest)
    if batch_size < settings.proxy.batch_size:
        log(f"batch size capped at {batch_size} (smallest pool) so every pool trains with the same compute")

    # 3. One input map per modality, fit on every training pool together; each pool prepared once.
    t0 = time.perf_counter()
    dim = settings.proxy.input_dim
    image_map = fit_input_map([p.images for p in clean.values()], dim)
    text_map = fit_input_map([p.texts for p in clean.values()], dim)
    inputs = {name: (image_map.prepare(p.images), text_map.prepare(p.texts)) for name, p in clean.items()}
    targets = {}
    for name, eval_set in eval_sets.items():
        eval_images, eval_texts, text_image = eval_targets(eval_set)
        targets[name] = (image_map.prepare(eval_images), text_map.prepare(eval_texts), text_image)
    prepare_seconds = time.perf_counter() - t0

    # 4. Train and score.
    results: dict[str, dict[str, dict]] = {name: {} for name in eval_sets}
    per_seed: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {} for name in eval_sets}
    train_seconds = eval_seconds = 0.0
    for name, (source, views, role) in jobs.items():
        t0 = time.perf_counter()
        image_inputs, text_inputs = inputs[source]
        heads = train_heads(
            image_inputs, text_inputs, groups[source], views, seeds, settings.proxy, batch_size=batch_size
        )
        t1 = time.perf_counter()
        for eval_name, (eval_images, eval_texts, text_image) in targets.items():
            recalls = retrieval_recall(heads.embed_images(eval_images), heads.embed_texts(eval_texts), text_image)
            per_seed[eval_name][name] = recalls
            results[eval_name][name] = {metric: summarize(values) for metric, values in recalls.items()}
        t2 = time.perf_counter()
        train_seconds, eval_seconds = train_seconds + t1 - t0, eval_seconds + t2 - t1
        trained = len(views[0])
        pools.setdefault(name, {}).update(
            {
                "role": role,
                "pairs_trained": trained,
                "epochs": round(settings.proxy.steps * batch_size / trained, 3),
                "final_loss": summarize(heads.final_loss),
                "temperature": summarize(heads.temperature.numpy()),
            }
        )
        headline = results[next(iter(eval_sets))][name]["mean_r@5"]
        log(f"{name}: mean_r@5 {headline['mean']:.3f} ± {headline['std']:.3f} ({t1 - t0:.1f}s training)")

    # 5. Sensitivity, on the first eval set (the check is about the proxy, not about a set).
    metric = settings.sensitivity.metric
    first_eval = next(iter(eval_sets))
    check = sensitivity_check(
        per_seed[first_eval][sensitivity_pool][metric], per_seed[first_eval][shuffled_name][metric], metric, fraction
    )
    return {
        "protocol": {
            "steps": settings.proxy.steps,
            "batch_size": batch_size,
            "configured_batch_size": settings.proxy.batch_size,
            "seeds": seeds,
            "embed_dim": settings.proxy.embed_dim,
            "learning_rate": settings.proxy.learning_rate,
            "weight_decay": settings.proxy.weight_decay,
            "temperature": settings.proxy.temperature if settings.proxy.temperature is not None else "learned",
            "input_dim": {"image": image_map.out_dim, "text": text_map.out_dim},
        },
        "eval_sets": {
            name: {
                "pairs": len(eval_sets[name]),
                "images": len(targets[name][0]),
                "chance": {m: round(v, 6) for k in RECALL_KS for m, v in chance_recall(targets[name][2], k).items()},
            }
            for name in eval_sets
        },
        "pools": pools,
        "results": results,
        "sensitivity": {"pool": sensitivity_pool, "eval_set": first_eval, **check.as_dict()},
        "seconds": {
            "contamination": round(contamination_seconds, 3),
            "prepare": round(prepare_seconds, 3),
            "training": round(train_seconds, 3),
            "evaluation": round(eval_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }


def _random_view(pool_size: int, size: int, seed: int) -> TrainingView:
    rows = np.sort(np.random.default_rng([seed, 0xBA5E]).choice(pool_size, size=size, replace=False))
    return TrainingView(rows, rows)
