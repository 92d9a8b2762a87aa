"""Our first run against Data-Juicer's, same photos, same captions, same CLIP weights, same machine.

Data-Juicer (py-data-juicer 1.6.x) runs image_text_similarity_filter plus three cheap filters
(image_size_filter, words_num_filter, image_aspect_ratio_filter) with 1 and 2 processes. Ours runs
the same tables from nothing (ingest, CLIP in one image pass, similarity, image and text statistics),
at our default precision (bfloat16 on a CPU with native bfloat16) and all in float32 as Data-Juicer
runs; the full default table set (the five image tables from one pass, similarity, aesthetics, text
statistics, caption MinHash; caption embeddings are not computed by default since nothing reads
them); and both again through the Dagster graph in process: the Data-Juicer tables as one run over
the 10 shards, and the whole first run (automation until nothing is stale: filters, dedup,
recaptioning, selection, mix and exports as well). Every run is a fresh process, timed from start
to exit: imports, model loading and writing results included, as a first run is.

The data: the COCO photos of ../shared/data/coco-cc replicated to 1,000 samples (as in
scoring_pass.py), written as 10 Data-Juicer jsonl shards with image files beside them, the layout
both systems read. Data-Juicer gets absolute image paths, ours the relative ones it requires; the
files are the same.

The weights: open_clip ViT-B/32 with our smoke seed (random), converted into a local Hugging Face
CLIP folder, the model class Data-Juicer loads; the conversion is checked by comparing both models'
similarities on the same pairs.

Data-Juicer is installed into its own virtual environment (benchmarks/work/dj-venv) layered over the
project's (a .pth file makes the project's packages visible), so its pins never touch .venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DJ_VENV = REPO_ROOT / "benchmarks" / "work" / "dj-venv"
DJ_REQUIREMENT = "py-data-juicer==1.6.1"
SHARDS = 10
DJ_PROCESSES = (1, 2)
TIMEOUT_S = 3600


# --- the data -------------------------------------------------------------------------------------


def write_corpus(root: Path) -> tuple[list[Path], Path]:
    """10 jsonl shards under root/raw/caption (ours, relative image paths) and the same records with
    absolute paths under root/dj (Data-Juicer's input folder). Returns (our shards, DJ folder)."""
    from benchmarks.scoring_pass import coco_pairs, replicated_samples
    from curation_assets.demo.writers import CaptionSample, write_dj_jsonl

    samples = replicated_samples(coco_pairs())
    per_shard = -(-len(samples) // SHARDS)
    ours, dj = root / "raw" / "caption", root / "dj"
    dj.mkdir(parents=True)
    shards = []
    for shard in range(SHARDS):
        chunk = samples[shard * per_shard : (shard + 1) * per_shard]
        path = ours / f"coco-{shard:05d}.jsonl"
        write_dj_jsonl(path, [CaptionSample(image, caption) for image, caption in chunk])
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["images"] = [str((path.parent / image).resolve()) for image in record["images"]]
        (dj / path.name).write_text("".join(json.dumps(record) + "\n" for record in records))
        shards.append(path)
    return shards, dj


# --- the same CLIP for Data-Juicer ----------------------------------------------------------------


def _hf_state_dict(state: dict, layers: tuple[int, int]) -> dict:
    """open_clip ViT state dict -> transformers CLIPModel names (q/k/v split out of in_proj)."""
    out = {}

    def tower(source: str, target: str, count: int) -> None:
        for i in range(count):
            block, layer = f"{source}transformer.resblocks.{i}.", f"{target}.encoder.layers.{i}."
            q, k, v = state[block + "attn.in_proj_weight"].chunk(3)
            qb, kb, vb = state[block + "attn.in_proj_bias"].chunk(3)
            for name, weight, bias in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
                out[layer + f"self_attn.{name}_proj.weight"], out[layer + f"self_attn.{name}_proj.bias"] = weight, bias
            for src, dst in (
                ("attn.out_proj", "self_attn.out_proj"),
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ):
                out[layer + dst + ".weight"], out[layer + dst + ".bias"] = (
                    state[block + src + ".weight"],
                    state[block + src + ".bias"],
                )

    tower("visual.", "vision_model", layers[0])
    tower("", "text_model", layers[1])
    out["vision_model.embeddings.class_embedding"] = state["visual.class_embedding"]
    out["vision_model.embeddings.patch_embedding.weight"] = state["visual.conv1.weight"]
    out["vision_model.embeddings.position_embedding.weight"] = state["visual.positional_embedding"]
    for src, dst in (("visual.ln_pre", "vision_model.pre_layrnorm"), ("visual.ln_post", "vision_model.post_layernorm")):
        out[dst + ".weight"], out[dst + ".bias"] = state[src + ".weight"], state[src + ".bias"]
    out["visual_projection.weight"] = state["visual.proj"].T.contiguous()
    out["text_model.embeddings.token_embedding.weight"] = state["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = state["positional_embedding"]
    out["text_model.final_layer_norm.weight"], out["text_model.final_layer_norm.bias"] = (
        state["ln_final.weight"],
        state["ln_final.bias"],
    )
    out["text_projection.weight"] = state["text_projection"].T.contiguous()
    out["logit_scale"] = state["logit_scale"]
    return out


def build_hf_clip(folder: Path):
    """Our smoke-seed open_clip ViT-B-32 as a transformers CLIP folder (model, processor, the same
    BPE vocabulary). Returns (our loaded CLIP, the folder)."""
    import open_clip
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    from curation_assets.models.clip import load_clip
    from curation_assets.recipe import ClipModel

    ours = load_clip(ClipModel(model="ViT-B-32", pretrained=None), "smoke", device="cpu", half_precision=False)
    config = open_clip.get_model_config("ViT-B-32")
    vision, text = config["vision_cfg"], config["text_cfg"]
    hf_config = CLIPConfig(
        text_config=dict(
            vocab_size=text["vocab_size"],
            hidden_size=text["width"],
            intermediate_size=4 * text["width"],
            num_hidden_layers=text["layers"],
            num_attention_heads=text["heads"],
            max_position_embeddings=text["context_length"],
            hidden_act="gelu",  # open_clip's ViT-B-32 uses exact GELU (the -quickgelu variants do not)
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        ),
        vision_config=dict(
            hidden_size=vision["width"],
            intermediate_size=4 * vision["width"],
            num_hidden_layers=vision["layers"],
            num_attention_heads=vision["width"] // 64,
            image_size=vision["image_size"],
            patch_size=vision["patch_size"],
            hidden_act="gelu",
        ),
        projection_dim=config["embed_dim"],
    )
    model = CLIPModel(hf_config)
    missing, unexpected = model.load_state_dict(
        _hf_state_dict(ours.model.state_dict(), (vision["layers"], text["layers"])), strict=False
    )
    if unexpected or any("position_ids" not in key for key in missing):
        raise RuntimeError(f"CLIP conversion: missing {missing}, unexpected {unexpected}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer = open_clip.tokenizer.SimpleTokenizer()  # the BPE open_clip tokenizes with
    specials = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    hf_tokenizer = CLIPTokenizer(
        vocab={specials.get(token, token): index for token, index in tokenizer.encoder.items()},
        merges=sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.get),
        model_max_length=text["context_length"],
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": vision["image_size"]},
        crop_size={"height": vision["image_size"], "width": vision["image_size"]},
        resample=3,  # bicubic, as open_clip
        image_mean=list(ours.preprocess.transforms[-1].mean),
        image_std=list(ours.preprocess.transforms[-1].std),
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=hf_tokenizer).save_pretrained(folder)
    return ours, folder


def conversion_check(ours, folder: Path, shards: list[Path]) -> float:
    """Largest |our cosine similarity - the HF model's| over a few real pairs (Data-Juicer's score is
    that cosine times exp(logit_scale) / 100)."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    records = [json.loads(line) for line in shards[0].read_text().splitlines()[:8]]
    images = [Image.open(shards[0].parent / record["images"][0]).convert("RGB") for record in records]
    texts = [record["text"].replace("<__dj__image>", "").replace("<|__dj__eoc|>", "").strip() for record in records]
    with torch.inference_mode():
        mine = (
            (ours.encode_images(torch.stack([ours.preprocess(image) for image in images])) * ours.encode_texts(texts))
            .sum(-1)
            .numpy()
        )
        model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
        inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
        out = model(**inputs)
        theirs = (
            torch.nn.functional.normalize(out.image_embeds, dim=-1)
            * torch.nn.functional.normalize(out.text_embeds, dim=-1)
        ).sum(-1)
    return float(np.abs(mine - theirs.numpy()).max())


# --- Data-Juicer ----------------------------------------------------------------------------------


def dj_python() -> tuple[Path | None, str]:
    """The Data-Juicer interpreter, installing it on first use; (None, why) when that fails."""
    python = DJ_VENV / "bin" / "python"
    if not python.exists():
        base = Path(getattr(sys, "_base_executable", sys.executable))
        try:
            subprocess.run([str(base), "-m", "venv", str(DJ_VENV)], check=True, capture_output=True)
            site = next((DJ_VENV / "lib").glob("python3*/site-packages"))
            project_site = next(Path(p) for p in sys.path if p.endswith("site-packages") and ".venv" in p)
            (site / "_project_venv.pth").write_text(str(project_site) + "\n")
            # aiohttp: data_juicer imports it at start-up without declaring it (1.6.1).
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", DJ_REQUIREMENT, "aiohttp"],
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except (subprocess.SubprocessError, OSError, StopIteration) as error:
            detail = getattr(error, "stderr", "") or str(error)
            return None, f"could not install {DJ_REQUIREMENT}: {detail.strip()[-500:]}"
    probe = subprocess.run(
        [str(python), "-c", "import data_juicer; print(data_juicer.__version__)"], capture_output=True, text=True
    )
    if probe.returncode:
        return None, f"data_juicer does not import: {probe.stderr.strip()[-500:]}"
    return python, probe.stdout.strip()


DJ_DRIVER = """
import sys
from data_juicer.config import init_configs
from data_juicer.core import DefaultExecutor
DefaultExecutor(init_configs(args=["--config", sys.argv[1]])).run()
"""


def dj_config(dj_input: Path, out: Path, clip_folder: Path, processes: int) -> Path:
    # Bounds that keep every sample: both systems then compute every score for every sample.
    config = {
        "project_name": f"bench-np{processes}",
        "dataset_path": str(dj_input),
        "export_path": str(out / "result.jsonl"),
        "np": processes,
        "use_cache": False,
        "open_tracer": False,
        "text_keys": "text",
        "image_key": "images",
        "process": [
            {"image_size_filter": {"min_size": "0", "max_size": "1TB"}},
            {"words_num_filter": {"min_num": 1, "max_num": 100000}},
            {"image_aspect_ratio_filter": {"min_ratio": 0.01, "max_ratio": 100.0}},
            {"image_text_similarity_filter": {"hf_clip": str(clip_folder), "min_score": -1.0, "max_score": 1.0}},
        ],
    }
    path = out / "config.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def run_timed(command: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    return time.perf_counter() - started, result


def offline_env(home: Path) -> dict:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),
        "HF_DATASETS_CACHE": str(home / "hf" / "datasets"),
        "DATA_JUICER_CACHE_HOME": str(home / "dj-cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }


# --- ours -----------------------------------------------------------------------------------------


DJ_TABLES = "dj_tables"  # CLIP similarity + image size / aspect ratio + words: what Data-Juicer computes
DJ_TABLES_FP32 = "dj_tables_fp32"  # the same, every model in float32 as Data-Juicer runs it
FULL_TABLES = "full"  # every per-shard caption table of the default recipe
GRAPH_DJ_TABLES = "graph_dj_tables"  # DJ_TABLES through the Dagster graph: one run over the 10 shards
GRAPH_FULL = "graph_full"  # the whole first run through the graph: tables, filters, dedup, ..., exports
PURE = (DJ_TABLES, DJ_TABLES_FP32, FULL_TABLES)
GRAPH = (GRAPH_DJ_TABLES, GRAPH_FULL)
WHAT = {
    DJ_TABLES: "pure code: ingest, CLIP in one pass, similarity, image and text stats",
    DJ_TABLES_FP32: "pure code, all float32: ingest, CLIP in one pass, similarity, image and text stats",
    FULL_TABLES: "pure code: ingest and every per-shard caption table",
    GRAPH_DJ_TABLES: "Dagster graph, one in-process run over the shards: ingest, clip_embeddings, "
    "clip_similarity, image_stats, text_stats",
    GRAPH_FULL: "Dagster graph, automation to convergence: every table, filters, dedup, recaption, selection, "
    "mix, exports (no eval)",
}


def vit_b_32_recipe():
    """The smoke recipe (no eval) with CLIP at ViT-B/32 size, random weights (the ones Data-Juicer gets)."""
    from curation_assets.recipe import PACKAGED_RECIPES, ClipModel, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml").without_evaluation()
    models = recipe.models.model_copy(update={"clip": ClipModel(model="ViT-B-32", pretrained=None)})
    return recipe.model_copy(update={"models": models})


def ours_main(root: Path, which: str, out: Path) -> None:
    """One fresh process: ingest every shard under root/raw/caption, compute `which` tables, write
    them as parquet under `out`."""
    import polars as pl
    from upath import UPath

    from curation_assets.models.clip import load_clip
    from curation_assets.models.loading import Runtime, load_model
    from curation_assets.normalize import normalize_shard
    from curation_assets.readers import ShardFile
    from curation_assets.recipe import PACKAGED_RECIPES, ClipModel, load_recipe
    from curation_assets.scoring.embedding_scores import clip_similarity, embedding_matrix
    from curation_assets.scoring.image_models import BatchSettings, score_image_tables
    from curation_assets.sources import SourceKind

    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml").without_evaluation()  # the data pipeline alone
    half = which != DJ_TABLES_FP32
    models = {"clip": load_clip(ClipModel(model="ViT-B-32", pretrained=None), "smoke", "auto", half)}
    image_tables = ["clip_embeddings"]
    if which == FULL_TABLES:
        image_tables += ["itm", "watermark", "nsfw", "image_phash"]
        for name in ("itm", "watermark", "nsfw", "aesthetics"):
            models[name] = load_model(
                name, recipe.models.model_copy(update={"clip": ClipModel(model="ViT-B-32")}), Runtime()
            )
    settings = BatchSettings(batch_size=32, num_workers=2)
    rows = quarantined = 0
    for path in sorted((root / "raw" / "caption").glob("*.jsonl")):
        shard = ShardFile(SourceKind.caption, UPath(path), UPath(root))
        ingested = normalize_shard(shard)
        normalized = ingested.valid
        rows, quarantined = rows + normalized.height, quarantined + ingested.quarantine.height
        frames = {"normalized": normalized}
        scored = score_image_tables(shard, normalized, image_tables, models.__getitem__, settings)
        frames |= {name: output.frame for name, output in scored.items()}
        embeddings = frames["clip_embeddings"]
        ids = normalized.select("sample_id")
        frames["clip_similarity"] = ids.with_columns(pl.Series("clip_similarity", clip_similarity(embeddings)))
        frames["image_stats"] = normalized.select(
            "sample_id", "image_width", "image_height", "image_num_bytes",
            (pl.col("image_width") / pl.col("image_height")).cast(pl.Float32).alias("aspect_ratio"),
        )  # fmt: skip
        from curation_assets.scoring.text_stats import text_stats

        captions = normalized["caption"].to_list()
        frames["text_stats"] = pl.concat([ids, text_stats(captions)], how="horizontal")
        if which == FULL_TABLES:
            from curation_assets.scoring.hashes import text_minhash

            images = embedding_matrix(embeddings, "image_embedding")
            frames["aesthetics"] = ids.with_columns(pl.Series("aesthetics", models["aesthetics"].score(images)))
            frames["caption_minhash"] = ids.with_columns(pl.Series("minhash", text_minhash(captions)))
        for name, frame in frames.items():
            (out / name).mkdir(parents=True, exist_ok=True)
            frame.write_parquet(out / name / f"{shard.stem}.parquet")
    print(json.dumps({"tables": sorted(frames), "rows": rows, "quarantined": quarantined}))


def graph_main(root: Path, which: str, home: Path) -> None:
    """One fresh process: the shards under root/raw/caption through the Dagster graph, in process
    (`make demo`'s runner), on a fresh instance; GRAPH_DJ_TABLES as one run over every shard (what a
    backfill of those assets launches), GRAPH_FULL by automation until nothing is stale."""
    from dagster import instance_for_test

    from curation_assets import registry
    from curation_assets.definitions import build_definitions
    from curation_assets.defs.keys import asset_key
    from curation_assets.defs.local_runner import QUIET_RUN_CONFIG, RANGE_END_TAG, RANGE_START_TAG, run_automation
    from curation_assets.defs.partitions import SHARD_PARTITIONS
    from curation_assets.local_run import tick_shard_sensors
    from curation_assets.sources import SourceKind
    from curation_assets.table_store import TableStore

    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), vit_b_32_recipe())
        tick_shard_sensors(instance, defs, log=lambda _: None)
        caption = SourceKind.caption
        shards = sorted(instance.get_dynamic_partitions(SHARD_PARTITIONS[caption].name))
        if which == GRAPH_FULL:
            runs = run_automation(instance, defs, log=lambda _: None)
            ok = all(run.success for run in runs)
        else:
            names = ("normalized", "quarantine", "clip_embeddings", "clip_similarity", "image_stats", "text_stats")
            outcome = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance,
                asset_selection=[asset_key(registry.table(caption, name)) for name in names],
                tags={RANGE_START_TAG: shards[0], RANGE_END_TAG: shards[-1]},
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            runs, ok = [outcome], outcome.success
        similarity = registry.table(caption, "clip_similarity")
        rows = TableStore(str(root)).read_shards(similarity, shards).height if ok else 0
    print(json.dumps({"runs": len(runs), "success": ok, "rows": rows, "quarantined": 0}))


# --- the comparison -------------------------------------------------------------------------------


def run() -> dict[str, dict]:
    from benchmarks.scoring_pass import COCO, coco_pairs

    if not coco_pairs():
        print(f"  data_juicer_compare: skipped, no COCO photos at {COCO}")
        return {}
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dj-") as folder:
        root = Path(folder)
        shards, dj_input = write_corpus(root)
        samples = sum(len(path.read_text().splitlines()) for path in shards)
        ours_clip, clip_folder = build_hf_clip(root / "hf-clip-vit-b-32")
        drift = conversion_check(ours_clip, clip_folder, shards)
        del ours_clip
        common = {"samples": samples, "shards": len(shards), "cores": os.cpu_count(), "clip": "ViT-B-32 random seed 0"}
        timings: dict[str, float] = {}
        for which in PURE + GRAPH:
            out = root / f"ours-{which}"
            out.mkdir()
            load = os.getloadavg()[0]
            # The graph writes its tables under the data root: each graph run gets a copy of the inputs.
            data = root if which in PURE else copy_inputs(root, out / "data")
            seconds, result = run_timed(
                [sys.executable, "-m", "benchmarks.data_juicer_compare", "ours", str(data), which, str(out)],
                offline_env(out),
                REPO_ROOT,
            )
            summary = json.loads(result.stdout.strip().splitlines()[-1]) if not result.returncode else {}
            if result.returncode or summary["rows"] != samples:
                raise RuntimeError(f"ours ({which}) failed or lost rows {summary}:\n{result.stderr[-3000:]}")
            timings[which] = seconds
            figures[f"dj_compare_ours_{which}_first_run_s"] = {
                "value": round(seconds, 1),
                "unit": "s",
                "what": "fresh process, from start to exit: " + WHAT[which],
                "load_average_1min": round(load, 2),
                **common,
            }
        python, version = dj_python()
        if python is None:
            figures["dj_compare_data_juicer_unavailable"] = {"value": 0, "unit": "", "why": version, **common}
            return figures
        for processes in DJ_PROCESSES:
            out = root / f"dj-np{processes}"
            out.mkdir()
            driver = out / "driver.py"
            driver.write_text(DJ_DRIVER)
            load = os.getloadavg()[0]
            config = dj_config(dj_input, out, clip_folder, processes)
            seconds, result = run_timed([str(python), str(driver), str(config)], offline_env(out), out)
            kept = sum(1 for _ in (out / "result.jsonl").open()) if (out / "result.jsonl").exists() else None
            if result.returncode or kept != samples:
                figures[f"dj_compare_data_juicer_np{processes}_failed"] = {
                    "value": result.returncode,
                    "unit": "rc",
                    "kept": kept,
                    "stderr_tail": result.stderr[-1500:],
                    **common,
                }
                continue
            figures[f"dj_compare_data_juicer_np{processes}_s"] = {
                "value": round(seconds, 1),
                "unit": "s",
                "version": version,
                "ops": "image_size_filter, words_num_filter, image_aspect_ratio_filter, image_text_similarity_filter",
                "clip_conversion_max_cosine_gap": round(drift, 6),
                "load_average_1min": round(load, 2),
                **common,
            }
            for which, ours in timings.items():
                figures[f"dj_compare_ours_{which}_vs_data_juicer_np{processes}_ratio"] = {
                    "value": round(ours / seconds, 3),
                    "unit": "ratio",
                    **({"target": "at most 0.5"} if which in (DJ_TABLES, DJ_TABLES_FP32, GRAPH_DJ_TABLES) else {}),
                    **common,
                }
    return figures


def copy_inputs(root: Path, data: Path) -> Path:
    """A data root holding the corpus's shards and images (raw/) and nothing else."""
    import shutil

    shutil.copytree(root / "raw", data / "raw")
    return data


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "ours":
        main = graph_main if sys.argv[3] in GRAPH else ours_main
        main(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    else:
        for key, figure in run().items():
            print(f"{key:<58} {figure['value']:>10} {figure['unit']:<6} {figure}")
