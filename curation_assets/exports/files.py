"""Writing export files safely and only when they change, and the manifest of each export.

Each file is staged (a hidden temp file beside it locally, a local temp file uploaded in one PUT
on object stores) and appears under its name only complete: a killed export leaves the old file or
the new one, never half of one; a trainer never opens the `.<name>.*.tmp` staging names.

"Unchanged" is decided per file from a fingerprint: either one computed from the plan (tars: the
ordered member digests, so an unchanged tar is known without reading a single image), or the
sha256 of the rendered content (json, jsonl, parquet: rendered to staging, then dropped if equal).
The manifest, written last, records what is on disk; files it no longer lists are removed after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

from upath import UPath

from curation_assets.exports.layout import export_manifest
from curation_assets.storage import write_bytes_atomic

MANIFEST_VERSION = 1


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def read_file(root: UPath, relative: str) -> bytes:
    """Bytes of a file under the export root; plain `open` locally (a UPath per image costs more
    than reading a small image)."""
    if is_local(root):
        with open(os.path.join(root.path, relative), "rb") as handle:
            return handle.read()
    return (root / relative).read_bytes()


class StagedFile:
    """A file being written: hashes and counts what goes through it; `commit` puts it in place."""

    def __init__(self, target: UPath):
        self.target = target
        if is_local(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor, self.temp = tempfile.mkstemp(dir=target.parent.path, prefix=f".{target.name}.", suffix=".tmp")
        else:
            descriptor, self.temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp")
        # A large buffer: tarfile writes each 512-byte header and padding block separately.
        self.handle: BinaryIO = os.fdopen(descriptor, "wb", buffering=1 << 20)
        self.digest = hashlib.sha256()
        self.num_bytes = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.num_bytes += len(data)
        return self.handle.write(data)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def commit(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if is_local(self.target):
            os.replace(self.temp, self.target.path)
        else:
            self.target.fs.put_file(self.temp, self.target.path)  # one PUT: all or nothing
            os.unlink(self.temp)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        if os.path.exists(self.temp):
            os.unlink(self.temp)


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the export root
    sha256: str
    num_bytes: int
    samples: int
    fingerprint: str


@dataclass
class PlannedFile:
    path: str
    samples: int
    write: Callable[[StagedFile], None]  # writes the whole content
    fingerprint: str | None = None  # None: the content's own sha256 decides whether it changed


@dataclass
class ExportResult:
    name: str
    manifest: dict
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    manifest_written: bool = False


def read_manifest(root: UPath, name: str) -> dict | None:
    path = root / export_manifest(name)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_export(
    root: UPath, name: str, planned: Sequence[PlannedFile], counts: dict, details: dict | None = None
) -> ExportResult:
    """Bring the export's files and manifest up to date, writing only files whose fingerprint moved."""
    previous = read_manifest(root, name) or {}
    before = {entry["path"]: entry for entry in previous.get("files", [])}
    result = ExportResult(name, {})
    entries: list[FileEntry] = []
    for plan in planned:
        entry = _reuse(root, before.get(plan.path), plan.fingerprint)
        committed = False
        if entry is None:
            entry, committed = _write(root, plan, before.get(plan.path))
        (result.written if committed else result.unchanged).append(plan.path)
        entries.append(entry)
    manifest = {
        "export": name,
        "version": MANIFEST_VERSION,
        "counts": {**counts, "files": len(entries), "bytes": sum(e.num_bytes for e in entries)},
        **(details or {}),
        "files": [asdict(entry) for entry in entries],
    }
    result.manifest = manifest
    result.manifest_written = _write_if_changed(root / export_manifest(name), _manifest_bytes(manifest))
    listed = {entry.path for entry in entries}
    for path in sorted(set(before) - listed):
        target = root / path
        if target.exists():
            target.unlink()
            result.removed.append(path)
    return result


def retire_export(root: UPath, name: str) -> list[str]:
    """Remove an export that is no longer written (disabled, or its kind left the mix): its files,
    then its manifest, so no trainer reads a set that no longer matches the mix."""
    manifest = read_manifest(root, name)
    if manifest is None:
        return []
    removed = []
    for entry in manifest.get("files", []):
        target = root / entry["path"]
        if target.exists():
            target.unlink()
            removed.append(entry["path"])
    (root / export_manifest(name)).unlink()
    return removed


def sweep_staging(root: UPath) -> list[str]:
    """Delete staging files a killed export left (`.<name>.*.tmp`, never a name a trainer opens).
    Call only while no other export writes under `root`."""
    if not is_local(root) or not root.exists():
        return []  # object stores stage in the local temp folder: nothing is left on the store
    swept = []
    for folder, _, names in os.walk(root.path):
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                os.unlink(os.path.join(folder, name))
                swept.append(os.path.relpath(os.path.join(folder, name), root.path))
    return swept


def _reuse(root: UPath, previous: dict | None, fingerprint: str | None) -> FileEntry | None:
    """The recorded entry when the plan's fingerprint matches it and the file is still there, whole."""
    if previous is None or fingerprint is None or previous.get("fingerprint") != fingerprint:
        return None
    target = root / previous["path"]
    if not target.exists() or target.stat().st_size != previous["num_bytes"]:
        return None
    return FileEntry(**previous)


def _write(root: UPath, plan: PlannedFile, previous: dict | None) -> tuple[FileEntry, bool]:
    """Render the file to staging; commit it unless the same bytes are already in place."""
    target = root / plan.path
    staged = StagedFile(target)
    try:
        plan.write(staged)
        staged.handle.flush()
        entry = FileEntry(plan.path, staged.sha256, staged.num_bytes, plan.samples, plan.fingerprint or staged.sha256)
        unchanged = (
            previous is not None
            and previous.get("sha256") == entry.sha256
            and target.exists()
            and target.stat().st_size == entry.num_bytes
        )
        if unchanged:  # same bytes as on disk: leave the file (and its mtime) alone
            staged.discard()
        else:
            staged.commit()
        return entry, not unchanged
    except BaseException:
        staged.discard()
        raise


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write_if_changed(path: UPath, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    write_bytes_atomic(data, path)
    return True
