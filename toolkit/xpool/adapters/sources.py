"""Checks of a model version's source, so a missing or corrupt model fails before launch.

A `file://` source (an absolute directory or file, as Xinference requires) and an `s3://`
prefix are checked against what the platform file declares: every file named in `checksums`
exists and has that sha256, weight files are not empty, and the total bytes equal `sizeBytes`.
Hub sources (`hf://`, `modelscope://`) cannot be checked offline: Xinference downloads them.
`local://` sources are xpool's built-in models. Every failure is one InputError line that
names the model, the version, the source, the problem and what to do.

`fetch_s3` downloads an `s3://` prefix for a Xinference on this host (which cannot read s3://),
verifying the same things while it streams, and skips the download when a verified copy of the
same listing is already there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from xpool.adapters.s3 import CHUNK, S3Client, S3Object, parse_s3
from xpool.config.models import ModelVersion
from xpool.errors import InputError, Problem, RemoteError

HUB_NOTE = "not checked (hub source; Xinference downloads it)"
BUILTIN_NOTE = "built-in"
# Files that hold weights: empty means a truncated copy. Other files (e.g. an empty
# `added_tokens.json`) may legitimately be empty.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".onnx", ".h5")
# Written last into a downloaded s3:// copy: its presence with the same listing means complete.
MARKER = ".xpool-source.json"
PREFIX_CHARS = 12  # of a sha256 shown in a mismatch


@dataclass(frozen=True)
class SourceReport:
    """What a check found: `checked` is False for sources that cannot be checked here."""

    scheme: str
    checked: bool
    note: str
    files: int = 0
    total_bytes: int | None = None
    checksums_verified: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "checked": self.checked,
            "files": self.files,
            "totalBytes": self.total_bytes,
            "checksumsVerified": self.checksums_verified,
            "note": self.note,
        }


def scheme_of(source: str) -> str:
    return source.partition("://")[0]


@dataclass(frozen=True)
class _Subject:
    """The model version a check is about, to name it in every error."""

    model: str
    version: ModelVersion

    def error(self, message: str) -> InputError:
        return InputError([Problem(self.where, "", f"{self.version.source}: {message}")])

    def wrap(self, exc: InputError) -> InputError:
        """An error about the source (a client's names the s3:// object) under this version."""
        return InputError([Problem(self.where, "", p.message) for p in exc.problems])

    @property
    def where(self) -> str:
        return f"model '{self.model}' version '{self.version.version}'"


def check_source(
    model: str,
    version: ModelVersion,
    *,
    s3: S3Client | None = None,
) -> SourceReport:
    """Check one version's source; raise InputError (one line) on the first problem.

    A `file://` source is absolute (config/source_urls.py refuses others on loading); `s3`
    defaults to a client configured from the environment.
    """
    subject = _Subject(model, version)
    scheme = scheme_of(version.source)
    if scheme in ("hf", "modelscope"):
        return SourceReport(scheme, False, HUB_NOTE)
    if scheme == "local":
        return SourceReport(scheme, False, BUILTIN_NOTE)
    if scheme == "file":
        return _check_file(subject)
    with _client(subject, s3) as client:
        return _check_s3(subject, client)


@contextmanager
def _client(subject: _Subject, s3: S3Client | None) -> Iterator[S3Client]:
    """The given client or one from the environment; its errors name the model version."""
    try:
        if s3 is not None:
            yield s3
            return
        with S3Client.from_env() as client:
            yield client
    except InputError as exc:
        raise subject.wrap(exc) from None
    except RemoteError as exc:
        raise RemoteError(f"{subject.where}: {exc}") from None


# -- shared rules ------------------------------------------------------------------------------


def _check_entries(subject: _Subject, sizes: Mapping[str, int]) -> None:
    """What the listing alone shows: listed files present, weights not empty, total size."""
    version = subject.version
    for name in sorted(version.checksums):
        if name not in sizes:
            raise subject.error(
                f"{name} (listed in checksums) is missing; copy it into the source or remove "
                "it from checksums"
            )
    for name in sorted(sizes):
        if sizes[name] == 0 and name.lower().endswith(WEIGHT_SUFFIXES):
            raise subject.error(
                f"{name} is empty (0 bytes), a truncated copy; copy the model again"
            )
    total = sum(sizes.values())
    if version.size_bytes is not None and total != version.size_bytes:
        raise subject.error(
            f"holds {total:,} bytes in {len(sizes)} files but sizeBytes is "
            f"{version.size_bytes:,}; copy the model again (a file is missing or truncated) "
            "or correct sizeBytes"
        )


def _verify_digest(subject: _Subject, name: str, actual: str) -> None:
    expected = subject.version.checksums[name]
    if actual != expected:
        raise subject.error(
            f"{name}: sha256 mismatch (expected {expected[:PREFIX_CHARS]}..., got "
            f"{actual[:PREFIX_CHARS]}...); copy the file again or correct checksums"
        )


# -- file:// -----------------------------------------------------------------------------------


def file_path(source: str) -> Path:
    """`file:///abs/path` -> /abs/path (percent-escapes decoded); relative paths stay relative."""
    return Path(unquote(source.removeprefix("file://")))


def local_files(root: Path) -> dict[str, Path]:
    """Every file of a source (a directory, recursively, symlinks followed; or one file),
    by path inside it. Raises OSError when a directory cannot be listed."""
    if not root.is_dir():
        return {root.name: root}

    def fail(exc: OSError) -> None:
        raise exc

    out: dict[str, Path] = {}
    for directory, _dirs, files in os.walk(root, onerror=fail, followlinks=True):
        for name in files:
            path = Path(directory) / name
            out[path.relative_to(root).as_posix()] = path
    return out


def file_stamp(source: str) -> tuple[tuple[str, int, int], ...] | None:
    """(path, bytes, mtime) of every file of a file:// source, or None when it cannot be read:
    an unchanged stamp lets a caller skip hashing the same files twice in one run."""
    try:
        files = local_files(file_path(source))
        return tuple(
            (name, st.st_size, st.st_mtime_ns)
            for name, st in ((n, p.stat()) for n, p in sorted(files.items()))
        )
    except OSError:
        return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _check_file(subject: _Subject) -> SourceReport:
    root = file_path(subject.version.source)
    if not root.exists():
        raise subject.error(f"{root} does not exist; copy the model there or correct source")
    try:
        files = local_files(root)
        sizes = {name: path.stat().st_size for name, path in files.items()}
    except PermissionError as exc:
        raise subject.error(
            f"{exc.filename} cannot be read (permission denied); grant read access to the "
            "user running xpool and Xinference"
        ) from None
    except OSError as exc:
        raise subject.error(f"{exc.filename}: {exc.strerror}; copy the model again") from None
    if not files:
        raise subject.error(f"{root} holds no files; copy the model there or correct source")
    for name, path in sorted(files.items()):
        if not os.access(path, os.R_OK):
            raise subject.error(
                f"{name} cannot be read (permission denied); grant read access to the user "
                "running xpool and Xinference"
            )
    _check_entries(subject, sizes)
    for name in sorted(subject.version.checksums):
        _verify_digest(subject, name, sha256_file(files[name]))
    return SourceReport(
        "file",
        True,
        "ok",
        files=len(files),
        total_bytes=sum(sizes.values()),
        checksums_verified=len(subject.version.checksums),
    )


# -- s3:// -------------------------------------------------------------------------------------


def _s3_listing(subject: _Subject, client: S3Client) -> dict[str, S3Object]:
    """The source's objects by path inside the prefix (folder placeholders left out)."""
    bucket, prefix = parse_s3(subject.version.source)
    under = f"{prefix}/" if prefix else ""
    objects = client.list_objects(bucket, under)
    out = {o.key[len(under) :]: o for o in objects if not o.key.endswith("/")}
    if not out:
        raise subject.error(
            f"no objects under s3://{bucket}/{under}; upload the model there or correct source"
        )
    for name in out:
        if ".." in name.split("/") or name.startswith("/"):
            raise subject.error(f"object key {under}{name} leaves the prefix; rename it")
    return out


def _check_s3(subject: _Subject, client: S3Client) -> SourceReport:
    objects = _s3_listing(subject, client)
    _check_entries(subject, {name: o.size for name, o in objects.items()})
    bucket, _ = parse_s3(subject.version.source)
    for name in sorted(subject.version.checksums):
        _, digest = client.download(bucket, objects[name].key, None)
        _verify_digest(subject, name, digest)
    return SourceReport(
        "s3",
        True,
        "ok",
        files=len(objects),
        total_bytes=sum(o.size for o in objects.values()),
        checksums_verified=len(subject.version.checksums),
    )


def s3_target(source: str, root: Path) -> Path:
    """Where `fetch_s3` keeps a copy of `source`: ROOT/BUCKET/PREFIX."""
    bucket, prefix = parse_s3(source)
    return root / bucket / prefix if prefix else root / bucket


def fetch_s3(model: str, version: ModelVersion, root: Path, s3: S3Client | None = None) -> Path:
    """A verified local copy of an s3:// source under `root`, downloaded only when the copy
    there is missing or was made from another listing (objects, sizes, ETags) or checksums.

    Objects stream into a temporary sibling directory that is renamed into place after every
    check passed, with a marker written last; an interrupted download leaves no copy.
    """
    subject = _Subject(model, version)
    target = s3_target(version.source, root)
    with _client(subject, s3) as client:
        objects = _s3_listing(subject, client)
        _check_entries(subject, {name: o.size for name, o in objects.items()})
        stamp = {
            "source": version.source,
            "objects": [[n, o.size, o.etag] for n, o in sorted(objects.items())],
            "checksums": dict(sorted(version.checksums.items())),
        }
        if _read_marker(target) == stamp:
            return target
        part = target.with_name(f".{target.name}.part-{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        try:
            _download_all(subject, client, objects, part)
            (part / MARKER).write_text(json.dumps(stamp) + "\n")
            if target.exists():
                shutil.rmtree(target)
            part.rename(target)
        finally:
            shutil.rmtree(part, ignore_errors=True)
    return target


def _download_all(
    subject: _Subject, client: S3Client, objects: Mapping[str, S3Object], part: Path
) -> None:
    bucket, _ = parse_s3(subject.version.source)
    for name, obj in sorted(objects.items()):
        dest = part / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        size, digest = client.download(bucket, obj.key, dest)
        if size != obj.size:
            raise subject.error(
                f"{name} changed while downloading (listed {obj.size:,} bytes, got {size:,}); "
                "run again once the upload is complete"
            )
        if name in subject.version.checksums:
            _verify_digest(subject, name, digest)


def _read_marker(target: Path) -> Any:
    try:
        return json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
