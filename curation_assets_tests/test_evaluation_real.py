"""The proxy on real COCO photos and captions (../shared/data/coco-cc): frozen EfficientNet-Lite0 and
MiniLM features, 46 photos x 5 captions to train on, 30 held-out photos x 5 captions to evaluate.

Features are computed once per session through the same readers and feature code the pipeline uses
(training pool as a Data-Juicer jsonl, eval set as a LLaVA json)."""

import io
import json
import shutil
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from curation_assets.evaluation.cli import main as cli_main
from curation_assets.evaluation.contamination import remove_contaminated
from curation_assets.evaluation.encoders import imagenet_preprocess, load_encoders
from curation_assets.evaluation.features import text_sha256
from curation_assets.evaluation.pairs import PairSet
from curation_assets.evaluation.pools import load_pairs, shard_pairs
from curation_assets.evaluation.protocol import run_proxy_eval
from curation_assets.evaluation.settings import Contamination, Encoders, Evaluation
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile
from curation_assets.scoring.hashes import phash_of_bytes
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import require_shared

TRAIN_IMAGES = 46  # of 76; the other 30 (150 captions) are the eval set
BUS_IMAGE_ID = 252639  # "a long green and white bus driving down the road"
IMAGENET_BUSES = {654, 779, 874}  # minibus, school bus, trolleybus


def _split(rows):
    ids = sorted(row["coco_image_id"] for row in rows)
    train_ids = set(np.random.default_rng(0).permutation(ids)[:TRAIN_IMAGES].tolist())
    return [r for r in rows if r["coco_image_id"] in train_ids], [
        r for r in rows if r["coco_image_id"] not in train_ids
    ]


@pytest.fixture(scope="session")
def coco(tmp_path_factory):
    source = require_shared("coco-cc")
    rows = [json.loads(line) for line in (source / "pairs.jsonl").read_text().splitlines() if line.strip()]
    train_rows, eval_rows = _split(rows)
    root = tmp_path_factory.mktemp("coco-proxy")
    shard_dir = root / "raw" / "caption"
    (shard_dir / "coco-train_images").mkdir(parents=True)
    with (shard_dir / "coco-train.jsonl").open("w") as out:  # Data-Juicer jsonl: one line per caption
        for row in train_rows:
            name = row["image"].rsplit("/", 1)[-1]
            shutil.copy(source / row["image"], shard_dir / "coco-train_images" / name)
            for caption in row["captions"]:
                text = f"<__dj__image> {caption} <|__dj__eoc|>"
                out.write(json.dumps({"text": text, "images": [f"coco-train_images/{name}"]}) + "\n")
    eval_dir = root / "evals"
    (eval_dir / "images").mkdir(parents=True)
    llava = []  # LLaVA json: one entry per caption, the caption is the gpt turn
    for row in eval_rows:
        name = row["image"].rsplit("/", 1)[-1]
        shutil.copy(source / row["image"], eval_dir / "images" / name)
        for k, caption in enumerate(row["captions"]):
            turns = [{"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": caption}]
            llava.append({"id": f"{row['coco_image_id']}-{k}", "image": f"images/{name}", "conversations": turns})
    (eval_dir / "coco-eval.json").write_text(json.dumps(llava))
    encoders = load_encoders(Encoders(), device="cpu")
    train = shard_pairs("curated", shard_dir / "coco-train.jsonl", encoders, num_workers=1)
    eval_set = shard_pairs("coco", eval_dir / "coco-eval.json", encoders, num_workers=1)
    return SimpleNamespace(
        root=root, source=source, rows=rows, eval_rows=eval_rows, encoders=encoders, train=train, eval_set=eval_set
    )


def test_features_are_real_and_one_per_caption(coco):
    assert len(coco.train) == TRAIN_IMAGES * 5 and len(coco.eval_set) == 30 * 5
    assert coco.train.images.shape[1] == 1280 and coco.train.texts.shape[1] == 384
    assert coco.train.images.dtype == np.float16
    # Five captions of a photo share its image features (encoded once) and differ in text features.
    assert np.array_equal(coco.train.images[0], coco.train.images[4])
    assert not np.array_equal(coco.train.texts[0], coco.train.texts[1])
    assert len(np.unique(coco.eval_set.image_groups())) == 30


def test_image_encoder_is_the_real_imagenet_network(coco):
    # The classifier on top of the stored features recognises a COCO bus as one of ImageNet's buses.
    row = next(r for r in coco.rows if r["coco_image_id"] == BUS_IMAGE_ID)
    image = Image.open(coco.source / row["image"]).convert("RGB")
    pixels = imagenet_preprocess(224)(image).unsqueeze(0)
    features = torch.from_numpy(coco.encoders.image.encode(pixels)).float()
    classifier = coco.encoders.image.model.network._fc
    with torch.no_grad():
        top5 = set(classifier(features.to(classifier.weight.dtype)).topk(5).indices[0].tolist())
    assert top5 & IMAGENET_BUSES


def test_clean_captions_beat_half_shuffled_beyond_the_seed_spread(coco):
    """The design as filed: 300 steps, 5 seeds, batch 128; baselines off (no unfiltered pool here)."""
    settings = Evaluation.model_validate({"baselines": {"random": False, "all": False}})
    report = run_proxy_eval({"curated": coco.train}, {"coco": coco.eval_set}, settings)
    check = report["sensitivity"]
    clean = report["results"]["coco"]["curated"]["mean_r@5"]
    half = report["results"]["coco"]["curated_shuffled"]["mean_r@5"]
    print(f"\nreal COCO mean R@5: clean {clean['mean']:.3f} ± {clean['std']:.3f}, half shuffled "
          f"{half['mean']:.3f} ± {half['std']:.3f}, chance {report['eval_sets']['coco']['chance']['mean_r@5']:.3f}, "
          f"{report['seconds']['training']:.1f}s training")  # fmt: skip
    assert check["passed"], check["message"]
    assert clean["mean"] - half["mean"] > clean["std"] + half["std"]
    assert clean["mean"] > 3 * report["eval_sets"]["coco"]["chance"]["mean_r@5"]


def test_shuffled_share_orders_the_scores(coco):
    """More wrong captions, lower recall; all of them wrong is chance."""
    scores = {}
    for fraction in (0.25, 1.0):
        settings = Evaluation.model_validate(
            {"baselines": {"random": False, "all": False}, "sensitivity": {"shuffle_fraction": fraction}}
        )
        report = run_proxy_eval({"curated": coco.train}, {"coco": coco.eval_set}, settings)
        scores[0.0] = report["results"]["coco"]["curated"]["mean_r@5"]
        scores[fraction] = report["results"]["coco"]["curated_shuffled"]["mean_r@5"]
        chance = report["eval_sets"]["coco"]["chance"]["mean_r@5"]
    print(
        "\nreal COCO mean R@5 by shuffled share: "
        + ", ".join(f"{k:.0%} {v['mean']:.3f} ± {v['std']:.3f}" for k, v in sorted(scores.items()))
    )
    assert scores[0.0]["mean"] > scores[0.25]["mean"] > scores[1.0]["mean"]
    assert scores[1.0]["mean"] < 1.5 * chance


def test_eval_photos_hidden_in_the_training_pool_are_removed(coco):
    # Re-encoded, slightly cropped eval photos with new captions, and an eval caption on a training
    # photo: the first by pHash, the second by caption. Hashes come from real image bytes.
    copies = []
    for row in coco.eval_rows[:4]:
        image = Image.open(coco.source / row["image"]).convert("RGB")
        out = io.BytesIO()
        image.crop((3, 2, image.width, image.height)).save(out, format="JPEG", quality=70)
        copies.append(phash_of_bytes(out.getvalue()))
    leaked_caption = coco.eval_rows[5]["captions"][2].upper() + "!"
    n = len(coco.train)
    polluted = PairSet(
        "curated",
        coco.train.sample_ids + [f"copy-{i}" for i in range(4)] + ["leak"],
        coco.train.captions + [f"an unrelated caption {i}" for i in range(4)] + [leaked_caption],
        coco.train.image_sha256 + [f"other-bytes-{i}" for i in range(4)] + [coco.train.image_sha256[0]],
        coco.train.image_phash + copies + [coco.train.image_phash[0]],
        np.concatenate([coco.train.images, coco.train.images[:5]]),
        np.concatenate([coco.train.texts, coco.train.texts[:5]]),
    )
    kept, counts = remove_contaminated(polluted, [coco.eval_set], Contamination())
    assert (counts.by_image_sha256, counts.by_image_phash, counts.by_caption, counts.removed) == (0, 4, 1, 5)
    assert kept.sample_ids == coco.train.sample_ids and len(kept) == n


def test_a_curated_table_reuses_stored_features_and_reencodes_rewritten_captions(coco, tmp_path):
    root = coco.root
    shard = ShardFile(SourceKind.caption, _upath(root / "raw" / "caption" / "coco-train.jsonl"), _upath(root))
    normalized = normalize_shard(shard).valid
    (root / "caption" / "normalized").mkdir(parents=True, exist_ok=True)
    normalized.write_parquet(root / "caption" / "normalized" / "coco-train.jsonl.parquet")
    features_dir = tmp_path / "proxy_features"
    features_dir.mkdir()
    stored = pl.DataFrame(
        {"sample_id": coco.train.sample_ids, "image_sha256": coco.train.image_sha256,
         "phash": coco.train.image_phash,
         "text_sha256": text_sha256(coco.train.captions),
         "image_feature": pl.Series(coco.train.images), "text_feature": pl.Series(coco.train.texts),
         "produced_by": coco.encoders.identity}
    )  # fmt: skip
    stored.write_parquet(features_dir / "coco-train.jsonl.parquet")
    curated = normalized.select("sample_id", "shard_id", "image_ref", "caption").head(20)
    curated = curated.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("a recaptioned photo")).otherwise("caption").alias("caption")
    )
    curated.write_parquet(tmp_path / "curated.parquet")
    loads = []

    def encoders():
        loads.append(1)
        return coco.encoders

    pairs = load_pairs("curated", [tmp_path / "curated.parquet"], encoders, data_root=root, features_dir=features_dir)
    assert len(pairs) == 20 and pairs.captions[3] == "a recaptioned photo"
    assert np.array_equal(pairs.images, coco.train.images[:20])
    assert np.array_equal(pairs.texts[2], coco.train.texts[2])  # stored, not recomputed
    assert np.allclose(pairs.texts[3], coco.encoders.encode_texts(["a recaptioned photo"])[0], atol=1e-3)
    assert not np.allclose(pairs.texts[3], coco.train.texts[3], atol=1e-2)
    assert loads  # only the text encoder was needed, for the rewritten caption


def test_cli_prints_a_json_report(coco, tmp_path, capsys):
    bundle = tmp_path / "curated.parquet"
    coco.train.to_frame().write_parquet(bundle)
    unfiltered = tmp_path / "unfiltered.parquet"
    coco.train.to_frame().write_parquet(unfiltered)
    eval_bundle = tmp_path / "coco.parquet"
    coco.eval_set.to_frame().write_parquet(eval_bundle)
    code = cli_main(
        ["--pool", f"curated={bundle}", "--eval", f"coco={eval_bundle}", "--unfiltered", str(unfiltered),
         "--steps", "60", "--seeds", "0,1", "--output", str(tmp_path / "report.json")]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]["coco"]) == {"curated", "random", "all", "curated_shuffled"}
    assert report["protocol"]["steps"] == 60 and report["protocol"]["seeds"] == [0, 1]
    assert report["encoders"].startswith("none loaded")
    assert json.loads((tmp_path / "report.json").read_text()) == report


def _upath(path):
    from upath import UPath

    return UPath(path)
