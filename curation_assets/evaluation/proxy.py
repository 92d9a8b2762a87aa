"""The proxy itself: two linear heads trained with symmetric InfoNCE on frozen features, then
image-to-text and text-to-image recall@K on an eval set.

Every pool gets the same budget (steps x batch size), so pools are compared at equal compute, as in
DataComp. All seeds train at once as one batched problem: each seed has its own heads, batches and
temperature, and since AdamW is elementwise and the seeds share no parameter, that is the same as
training them one after another, only vectorised. A seed's result depends on its own seed only.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from curation_assets.evaluation.settings import RECALL_KS, ProxyTraining

CLIP_INITIAL_TEMPERATURE = 0.07
MIN_TEMPERATURE = 0.01  # CLIP's cap on the learned logit scale (100)
_EVAL_IMAGES_PER_BLOCK = 2048


@dataclass(frozen=True)
class TrainingView:
    """What one seed trains on: pool rows for the images and, aligned, pool rows for the captions.
    A clean pool pairs row i with row i; a random baseline picks a subset; a shuffled copy points
    some images at other rows' captions."""

    image_rows: np.ndarray
    text_rows: np.ndarray

    def __post_init__(self):
        if len(self.image_rows) != len(self.text_rows):
            raise ValueError("a training view pairs each image row with one text row")

    def __len__(self) -> int:
        return len(self.image_rows)

    @classmethod
    def whole(cls, size: int) -> TrainingView:
        rows = np.arange(size, dtype=np.int64)
        return cls(rows, rows)


@dataclass
class Heads:
    """Trained heads for S seeds over inputs prepared by one InputMap per modality."""

    image_weight: torch.Tensor  # (S, ri, D)
    text_weight: torch.Tensor  # (S, rt, D)
    temperature: torch.Tensor  # (S,)
    final_loss: np.ndarray  # (S,) mean training loss over the last 10% of steps

    @torch.no_grad()
    def embed_images(self, inputs: torch.Tensor) -> torch.Tensor:
        """(n, ri) prepared image inputs -> (S, n, D) unit vectors."""
        return _project(inputs, self.image_weight)

    @torch.no_grad()
    def embed_texts(self, inputs: torch.Tensor) -> torch.Tensor:
        return _project(inputs, self.text_weight)


def _project(inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    x = inputs.float().unsqueeze(0).expand(weight.shape[0], -1, -1)
    return F.normalize(torch.bmm(x, weight), dim=-1)


def batch_schedule(size: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """(steps, batch_size) positions into a view of `size` rows: shuffled epochs without replacement,
    reshuffled each epoch, partial last batches dropped. Deterministic per seed."""
    if batch_size > size:
        raise ValueError(f"batch size {batch_size} exceeds the {size} pairs to train on")
    rng = np.random.default_rng([seed, 0x5EED])
    per_epoch = size // batch_size
    epochs = math.ceil(steps / per_epoch)
    order = np.concatenate([rng.permutation(size)[: per_epoch * batch_size] for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size)


@contextlib.contextmanager
def torch_threads(count: int):
    """Run with `count` intra-op threads, then restore the process setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_heads(
    image_inputs: torch.Tensor,
    text_inputs: torch.Tensor,
    image_groups: np.ndarray,
    views: list[TrainingView],
    seeds: list[int],
    settings: ProxyTraining,
    batch_size: int | None = None,
) -> Heads:
    """Train one pair of heads per seed, seed s on views[s], for settings.steps steps of `batch_size`
    pairs (default settings.batch_size). Inputs are a pool's prepared features (InputMap.prepare),
    one row per pair. Captions of the same image (image_groups) are all positives for it, so
    COCO-style data with five captions per photo gets no false negatives."""
    with torch_threads(settings.threads):
        return _train(
            image_inputs, text_inputs, image_groups, views, seeds, settings, batch_size or settings.batch_size
        )


def _train(image_inputs, text_inputs, image_groups, views, seeds, settings: ProxyTraining, batch: int) -> Heads:
    if len(views) != len(seeds):
        raise ValueError(f"{len(views)} training views for {len(seeds)} seeds")
    num_seeds, steps = len(seeds), settings.steps
    groups = torch.from_numpy(np.asarray(image_groups, dtype=np.int64))

    # Pool rows per seed and step, computed up front: (S, steps, B) for images and captions.
    schedules = [batch_schedule(len(view), steps, batch, seed) for view, seed in zip(views, seeds)]
    image_rows = torch.from_numpy(np.stack([v.image_rows[s] for v, s in zip(views, schedules)]))
    text_rows = torch.from_numpy(np.stack([v.text_rows[s] for v, s in zip(views, schedules)]))

    image_weight = torch.stack([_init(image_inputs.shape[1], settings.embed_dim, seed, 1) for seed in seeds])
    text_weight = torch.stack([_init(text_inputs.shape[1], settings.embed_dim, seed, 2) for seed in seeds])
    image_weight.requires_grad_(True)
    text_weight.requires_grad_(True)
    learned = settings.temperature is None
    log_scale = torch.full((num_seeds,), -math.log(settings.temperature or CLIP_INITIAL_TEMPERATURE))
    if learned:
        log_scale.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [
            {"params": [image_weight, text_weight], "weight_decay": settings.weight_decay},
            *([{"params": [log_scale], "weight_decay": 0.0}] if learned else []),
        ],
        lr=settings.learning_rate,
        fused=True,  # one kernel per step instead of a dozen elementwise passes over every weight
    )
    tail = max(1, steps // 10)
    tail_loss = torch.zeros(num_seeds)
    for step in range(steps):
        rows_i, rows_t = image_rows[:, step], text_rows[:, step]
        z_image = F.normalize(torch.bmm(image_inputs[rows_i].float(), image_weight), dim=-1)
        z_text = F.normalize(torch.bmm(text_inputs[rows_t].float(), text_weight), dim=-1)
        logits = log_scale.exp()[:, None, None] * torch.bmm(z_image, z_text.transpose(1, 2))
        g = groups[rows_i]
        target = (g[:, :, None] == g[:, None, :]).float()
        target = target / target.sum(-1, keepdim=True)  # symmetric: same-image pairs on both sides
        per_seed = 0.5 * (
            -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean(-1)
            - (target * F.log_softmax(logits.transpose(1, 2), dim=-1)).sum(-1).mean(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        per_seed.sum().backward()  # seeds share no parameter: each gets exactly its own gradient
        optimizer.step()
        if learned:
            with torch.no_grad():
                log_scale.clamp_(max=-math.log(MIN_TEMPERATURE))
        if step >= steps - tail:
            tail_loss += per_seed.detach()
    return Heads(
        image_weight.detach(),
        text_weight.detach(),
        (-log_scale.detach()).exp(),
        (tail_loss / tail).numpy(),
    )


def _init(fan_in: int, width: int, seed: int, stream: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))
    return torch.randn(fan_in, width, generator=generator) / math.sqrt(fan_in)


@torch.no_grad()
def retrieval_recall(
    image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, text_image: np.ndarray, ks=RECALL_KS
) -> dict[str, np.ndarray]:
    """Recall@K per seed, both directions, for (S, m, D) image and (S, t, D) caption embeddings where
    caption j describes image text_image[j] (several captions per image allowed).

    image-to-text: an image is a hit at K if any of its captions ranks in its top K captions.
    text-to-image: a caption is a hit at K if its image ranks in its top K images. A negative that
    ties the positive ranks above it, so constant embeddings score zero, never more than chance.
    """
    text_image = torch.as_tensor(np.asarray(text_image, dtype=np.int64))
    num_seeds, num_images = image_embeddings.shape[0], image_embeddings.shape[1]
    results = {f"{d}_r@{k}": np.zeros(num_seeds) for d in ("i2t", "t2i") for k in ks}
    for s in range(num_seeds):
        texts = text_embeddings[s]
        positive = (image_embeddings[s][text_image] * texts).sum(-1)  # (t,) score of each caption's own image
        images_above = torch.zeros(len(texts), dtype=torch.int64)
        image_rank = torch.empty(num_images, dtype=torch.int64)
        for start in range(0, num_images, _EVAL_IMAGES_PER_BLOCK):
            block = torch.arange(start, min(start + _EVAL_IMAGES_PER_BLOCK, num_images))
            sims = image_embeddings[s][block] @ texts.T  # (b, t)
            own = text_image[None, :] == block[:, None]
            # >=: a negative that ties the positive ranks above it (ties never help the proxy).
            images_above += ((sims >= positive[None, :]) & ~own).sum(0)
            best_own = torch.where(own, sims, torch.tensor(-torch.inf)).max(-1).values
            image_rank[block] = ((sims >= best_own[:, None]) & ~own).sum(-1)
        for k in ks:
            results[f"i2t_r@{k}"][s] = (image_rank < k).float().mean().item()
            results[f"t2i_r@{k}"][s] = (images_above < k).float().mean().item()
    for k in ks:
        results[f"mean_r@{k}"] = (results[f"i2t_r@{k}"] + results[f"t2i_r@{k}"]) / 2
    return results


def chance_recall(text_image: np.ndarray, k: int) -> dict[str, float]:
    """Expected recall@K of a random ranking on this eval set: the floor a proxy must beat."""
    counts = np.bincount(np.asarray(text_image, dtype=np.int64))
    num_images, num_texts = len(counts), int(counts.sum())
    # image-to-text: P(at least one of an image's c captions among k of num_texts drawn at random)
    i2t = float(np.mean([1 - math.comb(num_texts - c, k) / math.comb(num_texts, k) for c in counts]))
    t2i = min(1.0, k / num_images)
    return {f"i2t_r@{k}": i2t, f"t2i_r@{k}": t2i, f"mean_r@{k}": (i2t + t2i) / 2}
