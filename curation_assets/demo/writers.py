"""Writers for every shard layout the readers accept, usable with arbitrary samples.

Output is byte-for-byte deterministic: tar members carry no timestamps or owners, JSON keys keep
insertion order, and images are written in the order given. Broken records are requested through
a sample's `extra` dict (the keys each writer honours are listed in its docstring), so tests can
build exactly the bad shard they need.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DJ_IMAGE_TOKEN = "<__dj__image>"
DJ_EOC_TOKEN = "<|__dj__eoc|>"
LLAVA_PROMPT = "<image>\nRender a clear and concise summary of the photo."


@dataclass
class CaptionSample:
    """One image-text pair. `caption` may be bytes so a shard can carry text that is not UTF-8."""

    image: bytes | None
    caption: str | bytes | None
    extra: dict = field(default_factory=dict)


@dataclass
class DocImage:
    """An image inside an interleaved document, tied to the sentence it illustrates.

    data None means the document references the image but no file is written (a missing image).
    """

    data: bytes | None
    matched_text_index: int
    url: str | None = None


@dataclass
class InterleavedDoc:
    """Extras: `raw_line` (MMC4: the line written verbatim), `unrelated` (MMC4: the shipped
    similarity matrix says no image matches any sentence, as for pictures that do not belong to
    the text)."""

    url: str
    sentences: list[str]
    images: list[DocImage]
    extra: dict = field(default_factory=dict)


@dataclass
class TextDoc:
    text: str
    meta: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


# --- shared helpers ---------------------------------------------------------------------------


def sniff_image_extension(data: bytes | None) -> str:
    """File extension for encoded image bytes; anything unrecognised claims to be a JPEG, as a
    crawler would have saved it."""
    if data is not None:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "png"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "webp"
    return "jpg"


def sample_key(index: int) -> str:
    """img2dataset's 9-digit sample key."""
    return f"{index:09d}"


def _caption_bytes(caption: str | bytes) -> bytes:
    return caption if isinstance(caption, bytes) else caption.encode("utf-8")


def _caption_text(caption: str | bytes | None) -> str | None:
    """The caption as a str for JSON fields; None when it is not valid UTF-8 (JSON cannot hold it)."""
    if isinstance(caption, bytes):
        try:
            return caption.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return caption


def _require_str_caption(sample: CaptionSample, layout: str) -> str:
    if isinstance(sample.caption, bytes):
        raise ValueError(f"{layout} stores captions as parquet strings, which must be UTF-8; got bytes")
    return sample.caption if sample.caption is not None else ""


def _json_line(record: dict, raw_values: dict[str, bytes] | None = None) -> bytes:
    """Serialise one record as a JSON line, splicing raw (possibly non-UTF-8) bytes in place of
    placeholder strings: json.dumps cannot emit invalid UTF-8 on its own."""
    line = json.dumps(record, ensure_ascii=False).encode("utf-8")
    for placeholder, raw in (raw_values or {}).items():
        escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
        line = line.replace(placeholder.encode("utf-8"), escaped)
    return line + b"\n"


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _place_image(target: Path, sample_extra: dict, data: bytes | None) -> None:
    """Put an image file where a record points, or deliberately not (extras `symlink_to`,
    `omit_image_file`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        target.unlink()
    if "symlink_to" in sample_extra:
        os.symlink(sample_extra["symlink_to"], target)
    elif not sample_extra.get("omit_image_file") and data is not None:
        target.write_bytes(data)


def _default_images_dir(path: Path) -> Path:
    """`<shard dir>/<shard stem>_images`: where readers look for a shard's image files."""
    return path.parent / f"{path.stem}_images"


def _write_parquet(path: str | os.PathLike, table: pa.Table) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def _dj_text(caption: str) -> str:
    return f"{DJ_IMAGE_TOKEN} {caption} {DJ_EOC_TOKEN}"


# --- caption shards ---------------------------------------------------------------------------


def _tar_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def write_webdataset_tar(
    path: str | os.PathLike, samples: Sequence[CaptionSample], keys: Sequence[str] | None = None
) -> list[str]:
    """img2dataset-style WebDataset tar: `{key}.{jpg|png|webp}`, `{key}.txt`, `{key}.json` per sample.

    A sample with image None gets no image member; caption None gets no .txt. Extras: `url`,
    `raw_json` (bytes written verbatim as the .json sidecar, e.g. b"{broken").
    Returns the keys used.
    """
    keys = list(keys) if keys is not None else [sample_key(i) for i in range(len(samples))]
    if len(keys) != len(samples):
        raise ValueError("need exactly one key per sample")
    members: list[tuple[str, bytes]] = []
    for key, sample in zip(keys, samples):
        if sample.image is not None:
            members.append((f"{key}.{sniff_image_extension(sample.image)}", sample.image))
        if sample.caption is not None:
            members.append((f"{key}.txt", _caption_bytes(sample.caption)))
        if "raw_json" in sample.extra:
            sidecar = sample.extra["raw_json"]
        else:
            sidecar = json.dumps(
                {
                    "key": key,
                    "caption": _caption_text(sample.caption),
                    "url": sample.extra.get("url", f"http://images.example.com/{key}.jpg"),
                    "status": "success",
                },
                ensure_ascii=False,
            ).encode("utf-8")
        members.append((f"{key}.json", sidecar))
    members.sort(key=lambda member: member[0])  # keys are unique, so each sample stays contiguous
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            tar.addfile(*_tar_member(name, data))
    return keys


def truncate_tar_inside_member(path: str | os.PathLike, member_name: str) -> int:
    """Cut a tar file in the middle of one member's data (never on a 512-byte block boundary),
    as an interrupted download would. Returns the new size."""
    with tarfile.open(path, "r") as tar:
        member = tar.getmember(member_name)
    if member.size < 2:
        raise ValueError(f"{member_name} is too small to cut inside its data")
    cut = member.offset_data + member.size // 2
    if cut % tarfile.BLOCKSIZE == 0:
        cut -= 1
    with open(path, "r+b") as handle:
        handle.truncate(cut)
    return cut


def write_img2dataset_parquet(path: str | os.PathLike, samples: Sequence[CaptionSample]) -> None:
    """img2dataset parquet output: columns key (9 digits), caption, jpg (binary, null if no image), url."""
    rows = {"key": [], "caption": [], "jpg": [], "url": []}
    for index, sample in enumerate(samples):
        key = sample_key(index)
        rows["key"].append(key)
        rows["caption"].append(_require_str_caption(sample, "img2dataset parquet"))
        rows["jpg"].append(sample.image)
        rows["url"].append(sample.extra.get("url", f"http://images.example.com/{key}.jpg"))
    schema = pa.schema([("key", pa.string()), ("caption", pa.string()), ("jpg", pa.binary()), ("url", pa.string())])
    _write_parquet(path, pa.Table.from_pydict(rows, schema=schema))


def write_dj_parquet(path: str | os.PathLike, samples: Sequence[CaptionSample]) -> None:
    """Data-Juicer parquet with inline image bytes: text with special tokens, images (names),
    image_bytes (one element per row, or empty lists for an image-less sample)."""
    texts, names, blobs = [], [], []
    for index, sample in enumerate(samples):
        texts.append(_dj_text(_require_str_caption(sample, "Data-Juicer parquet")))
        if sample.image is None:
            names.append([])
            blobs.append([])
        else:
            names.append([f"img_{index:06d}.{sniff_image_extension(sample.image)}"])
            blobs.append([sample.image])
    schema = pa.schema(
        [("text", pa.string()), ("images", pa.list_(pa.string())), ("image_bytes", pa.list_(pa.binary()))]
    )
    _write_parquet(path, pa.Table.from_pydict({"text": texts, "images": names, "image_bytes": blobs}, schema=schema))


def write_dj_jsonl(
    path: str | os.PathLike, samples: Sequence[CaptionSample], images_dir: str | os.PathLike | None = None
) -> None:
    """Data-Juicer jsonl: {"text": "<__dj__image> caption <|__dj__eoc|>", "images": [relative path]}.

    Image files go to images_dir (default `<stem>_images` beside the shard), named by line index.
    Extras: `raw_line` (bytes written verbatim as the line), `image_ref` (path written into the
    record verbatim and no file written, e.g. "../../outside.jpg" or "/etc/passwd"),
    `symlink_to` (the image file is a symlink to this target), `omit_image_file` (reference the
    usual path but write no file). A bytes caption is spliced in raw, so it may be invalid UTF-8.
    """
    path = Path(path)
    images_dir = Path(images_dir) if images_dir is not None else _default_images_dir(path)
    lines = []
    for index, sample in enumerate(samples):
        if "raw_line" in sample.extra:
            lines.append(sample.extra["raw_line"].rstrip(b"\n") + b"\n")
            continue
        images = []
        if "image_ref" in sample.extra:
            images.append(sample.extra["image_ref"])
        elif sample.image is not None or sample.extra.get("omit_image_file") or "symlink_to" in sample.extra:
            target = images_dir / f"{index:06d}.{sniff_image_extension(sample.image)}"
            _place_image(target, sample.extra, sample.image)
            images.append(os.path.relpath(target, path.parent))
        caption = sample.caption if sample.caption is not None else ""
        placeholder = f"__RAW_CAPTION_{index}__"
        text = _dj_text(placeholder if isinstance(caption, bytes) else caption)
        raw = {placeholder: caption} if isinstance(caption, bytes) else None
        lines.append(_json_line({"text": text, "images": images}, raw))
    _write_bytes(path, b"".join(lines))


def write_llava_json(
    path: str | os.PathLike, samples: Sequence[CaptionSample], images_dir: str | os.PathLike | None = None
) -> None:
    """LLaVA-558k pretraining layout: a JSON array of {"id", "image", "conversations"}.

    Extras: `id`, `image_ref`, `symlink_to`, `omit_image_file` (as in write_dj_jsonl) and
    `drop_gpt_turn` (leave out the answer, so the caption field is missing).
    """
    path = Path(path)
    images_dir = Path(images_dir) if images_dir is not None else _default_images_dir(path)
    records = []
    for index, sample in enumerate(samples):
        if "image_ref" in sample.extra:
            image_path = sample.extra["image_ref"]
        else:
            target = images_dir / f"{index:06d}.{sniff_image_extension(sample.image)}"
            _place_image(target, sample.extra, sample.image)
            image_path = os.path.relpath(target, path.parent)
        conversations = [{"from": "human", "value": LLAVA_PROMPT}]
        if not sample.extra.get("drop_gpt_turn"):
            conversations.append({"from": "gpt", "value": _require_str_caption(sample, "LLaVA json")})
        record_id = sample.extra.get("id", f"{index:09d}")
        records.append({"id": record_id, "image": image_path, "conversations": conversations})
    _write_bytes(path, json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8") + b"\n")


# --- interleaved shards -----------------------------------------------------------------------


def _unit_hash(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) derived from its arguments (no RNG state to thread)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _image_url(doc: InterleavedDoc, position: int, image: DocImage) -> str:
    return image.url or f"{doc.url.rstrip('/')}/image-{position}.jpg"


def _similarity_row(raw_url: str, n_sentences: int, matched: int, unrelated: bool = False) -> list[float]:
    """CLIP-like similarities of one image to every sentence: ~0.3 for its match, lower elsewhere;
    for an unrelated image, under 0.1 everywhere (MMC4 kept images scoring 0.15 or more)."""
    if unrelated:
        return [round(0.02 + 0.07 * _unit_hash(raw_url, j), 4) for j in range(n_sentences)]
    return [
        round(0.30 + 0.05 * _unit_hash(raw_url, j) if j == matched else 0.08 + 0.12 * _unit_hash(raw_url, j), 4)
        for j in range(n_sentences)
    ]


def mmc4_image_name(raw_url: str) -> str:
    """MMC4 names image files by a hash of their URL."""
    return hashlib.sha256(raw_url.encode("utf-8")).hexdigest()[:16] + ".jpg"


def write_mmc4_jsonl(
    path: str | os.PathLike, docs: Sequence[InterleavedDoc], images_dir: str | os.PathLike | None = None
) -> None:
    """MMC4 jsonl: {"url", "text_list", "image_info", "similarity_matrix"} per document.

    Image files go to `<shard dir>/<shard stem>_images/<image_name>` unless images_dir is given;
    a DocImage with data None is listed but never written. similarity_matrix is images x
    sentences, with the matched sentence scoring highest. Extras: `raw_line`.
    """
    path = Path(path)
    images_dir = Path(images_dir) if images_dir is not None else _default_images_dir(path)
    lines = []
    for doc in docs:
        if "raw_line" in doc.extra:
            lines.append(doc.extra["raw_line"].rstrip(b"\n") + b"\n")
            continue
        image_info, matrix = [], []
        for position, image in enumerate(doc.images):
            raw_url = _image_url(doc, position, image)
            row = _similarity_row(
                raw_url, len(doc.sentences), image.matched_text_index, doc.extra.get("unrelated", False)
            )
            name = mmc4_image_name(raw_url)
            image_info.append(
                {
                    "image_name": name,
                    "raw_url": raw_url,
                    "matched_text_index": image.matched_text_index,
                    "matched_sim": row[image.matched_text_index],
                }
            )
            matrix.append(row)
            if image.data is not None:
                _write_bytes(images_dir / name, image.data)
        record = {"url": doc.url, "text_list": doc.sentences, "image_info": image_info, "similarity_matrix": matrix}
        lines.append(_json_line(record))
    _write_bytes(path, b"".join(lines))


def write_obelics_parquet(path: str | os.PathLike, docs: Sequence[InterleavedDoc]) -> None:
    """OBELICS-style parquet: aligned `texts` and `images` lists (exactly one non-null per
    position; each image sits just before the sentence it matches) plus `url`."""
    all_texts, all_images, urls = [], [], []
    for doc in docs:
        by_sentence: dict[int, list[bytes]] = {}
        for image in doc.images:
            if image.data is None:
                raise ValueError("OBELICS stores image bytes inline; a DocImage needs data")
            by_sentence.setdefault(image.matched_text_index, []).append(image.data)
        texts, images = [], []
        for index, sentence in enumerate(doc.sentences):
            for data in by_sentence.get(index, []):
                texts.append(None)
                images.append(data)
            texts.append(sentence)
            images.append(None)
        all_texts.append(texts)
        all_images.append(images)
        urls.append(doc.url)
    schema = pa.schema([("texts", pa.list_(pa.string())), ("images", pa.list_(pa.binary())), ("url", pa.string())])
    _write_parquet(path, pa.Table.from_pydict({"texts": all_texts, "images": all_images, "url": urls}, schema=schema))


# --- text shards ------------------------------------------------------------------------------


def write_text_jsonl(path: str | os.PathLike, docs: Iterable[TextDoc]) -> None:
    """{"text", "meta"} per line. Extras: `raw_line`."""
    lines = []
    for doc in docs:
        if "raw_line" in doc.extra:
            lines.append(doc.extra["raw_line"].rstrip(b"\n") + b"\n")
        else:
            lines.append(_json_line({"text": doc.text, "meta": doc.meta}))
    _write_bytes(Path(path), b"".join(lines))


def write_text_parquet(path: str | os.PathLike, docs: Iterable[TextDoc]) -> None:
    """`text` column plus `meta` as a JSON string (parquet has no schemaless map)."""
    docs = list(docs)
    table = pa.Table.from_pydict(
        {"text": [doc.text for doc in docs], "meta": [json.dumps(doc.meta, sort_keys=True) for doc in docs]},
        schema=pa.schema([("text", pa.string()), ("meta", pa.string())]),
    )
    _write_parquet(path, table)
