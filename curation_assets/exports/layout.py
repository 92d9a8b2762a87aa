"""Where each export lives under the export root, and how a mixed sample is named in it.

```
<export root>/
  images/<kind>/<source shard>.d/<sample id>.<ext>        caption images, copied once per source shard
  images/<kind>/<source shard>.d/<sample id>-<pos>.<ext>  interleaved images (pos: place in the document)
  llava_stage1.json            LLaVA / Mini-Gemini: --data_path this file, --image_folder the export root
  data_juicer_<kind>.jsonl     Data-Juicer: `images` relative to the file
  webdataset/caption-000000.tar ...           img2dataset layout: key.jpg, key.txt, key.json
  interleaved/interleaved-000000.parquet ...  OBELICS-style aligned texts / images (paths)
  text/text-000000.jsonl ...                  (or .parquet)
  manifests/<export>.json                     files, counts and sha256 of each export
  manifests/images/<kind>/<source shard>.parquet   the images copied from one source shard
```
Every file a trainer reads names its images relative to its own folder, which is also how our own
readers resolve them, so each export reads back through `curation_assets.readers`. A source shard's
image folder is its shard id plus `.d`: a folder named `wds-00000.tar` would match a trainer's
`*.tar` glob.
"""

from __future__ import annotations

import posixpath

import polars as pl

IMAGES_DIR = "images"
MANIFESTS_DIR = "manifests"
LLAVA_FILE = "llava_stage1.json"
WEBDATASET_DIR = "webdataset"
INTERLEAVED_DIR = "interleaved"
TEXT_DIR = "text"


def data_juicer_file(kind: str) -> str:
    return f"data_juicer_{kind}.jsonl"


def export_key(sample_id: str, repeat_index: int) -> str:
    """The name of one mixed row in every export: a repeated sample appears once per repeat, so its
    repeat index is part of the key. No dot: WebDataset keys end at the first dot of a member name."""
    return f"{sample_id}-r{repeat_index}"


def export_key_expr() -> pl.Expr:
    return pl.format("{}-r{}", pl.col("sample_id"), pl.col("repeat_index")).alias("key")


def image_path(kind: str, shard_id: str, sample_id: str, position: int | None, extension: str) -> str:
    """An image's path relative to the export root. Interleaved images carry their position in the
    document, caption images (one per sample) do not."""
    name = sample_id if position is None else f"{sample_id}-{position}"
    return posixpath.join(IMAGES_DIR, kind, f"{shard_id}.d", f"{name}.{extension}")


def shard_image_manifest(kind: str, shard_id: str) -> str:
    return posixpath.join(MANIFESTS_DIR, IMAGES_DIR, kind, f"{shard_id}.parquet")


def export_manifest(name: str) -> str:
    return posixpath.join(MANIFESTS_DIR, f"{name}.json")


def relative_to(folder: str, path: str) -> str:
    """`path` (relative to the export root) as seen from `folder` (also relative to the root)."""
    return posixpath.relpath(path, folder or ".")


def numbered_file(folder: str, stem: str, index: int, extension: str) -> str:
    return posixpath.join(folder, f"{stem}-{index:06d}.{extension}")
