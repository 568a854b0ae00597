"""`xpool models list|show` as a subprocess: the examples, and file:// sources checked on disk
(a model directory written here, with right and wrong checksums and sizes)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLES, ROOT
from xpool.local.runtime import free_port

WEIGHTS = b"\x00\x01weights" * 4096
CONFIG = b'{"architectures": ["BertModel"], "hidden_size": 384}\n'
VOCAB = b"[PAD]\n[UNK]\nhello\nworld\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_model_dir(directory: Path) -> Path:
    """A small model directory: weights, config, a file in a subdirectory."""
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(WEIGHTS)
    (directory / "config.json").write_bytes(CONFIG)
    (directory / "tokenizer").mkdir()
    (directory / "tokenizer" / "vocab.txt").write_bytes(VOCAB)
    return directory


MODEL_BYTES = len(WEIGHTS) + len(CONFIG) + len(VOCAB)
CHECKSUMS = {"model.safetensors": sha256(WEIGHTS), "config.json": sha256(CONFIG)}


def version(number: str, source: str, **fields: Any) -> dict[str, Any]:
    return {
        "version": number,
        "source": source,
        "weightPrecision": "fp32",
        "engines": {"cpu": "sentence_transformers"},
        **fields,
    }


def write_platform(directory: Path, versions: list[dict[str, Any]], name: str = "sources") -> Path:
    """A platform file (embedded Xinference) serving one embedding model with `versions`."""
    doc = {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": name},
        "spec": {
            "xinference": {"endpoint": "embedded"},
            "gateway": {"listen": f"127.0.0.1:{free_port()}"},
            "pools": [
                {
                    "name": "local",
                    "vendor": "cpu",
                    "accelerator": "cpu",
                    "nodes": 1,
                    "acceleratorsPerNode": 4,
                }
            ],
            "models": [
                {
                    "name": "embedding",
                    "type": "embedding",
                    "tier": "P1",
                    "architecture": "all-minilm-l6-v2",
                    "versions": versions,
                    "context": {"batch": 8, "seqLen": 256},
                    "slo": {"ttftMs": 1000},
                    "demand": {"peakQps": 2},
                    "perInstanceQps": 20,
                    "instances": {"min": 1, "max": 2},
                }
            ],
        },
    }
    path = directory / "platform.yaml"
    path.write_text(json.dumps(doc, indent=2))
    return path


def models(*args: str, state: Path, env: dict[str, str] | None = None):
    """`xpool models ARGS --state-dir STATE` as a subprocess (with `env`: instead of ours)."""
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", "models", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        env=env,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "models" / "minilm")


def test_list_quickstart_one_row_per_version_without_a_gateway(tmp_path: Path):
    result = models("list", str(EXAMPLES / "quickstart.yaml"), "-o", "json", state=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["gateway"] is None
    rows = {(v["model"], v["version"]): v for v in data["versions"]}
    assert set(rows) == {("chat", "1"), ("embedding", "1")}
    assert rows["chat", "1"]["weight"] == 100 and rows["chat", "1"]["tier"] == "P0"
    assert rows["chat", "1"]["scheme"] == "local" and rows["chat", "1"]["instances"] is None
    assert "no gateway answered for quickstart" in result.stderr


def test_list_table_on_the_article_platform(tmp_path: Path):
    result = models("list", str(EXAMPLES / "platform.yaml"), state=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:5] == ["MODEL", "VERSION", "TIER", "WEIGHT", "SOURCE"]
    qa = [line.split() for line in lines if line.startswith("qa-chat ")]
    assert qa[0][:4] == ["qa-chat", "1.0.0", "P0", "100"] and qa[0][5] == "int8"
    assert qa[0][6:9] == ["32B", "20", "350"]  # parameters, measured QPS and TTFT
    assert qa[0][9:12] == ["-", "-", "-"]  # ready, loading, draining unknown
    assert " ".join(qa[0][12:]) == "the article's model"
    assert qa[1][:4] == ["qa-chat", "1.1.0", "P0", "0"]  # the next release, no traffic yet
    assert len([line for line in lines if line and not line.startswith(("#", "MODEL"))]) == 7
    assert result.stderr.count("\n") == 1  # the no-gateway note, nothing else


def test_list_shows_weights_metadata_and_notes(tmp_path: Path, source: Path):
    platform = write_platform(
        tmp_path,
        [
            version(
                "1",
                source.as_uri(),
                weight=90,
                metadata={"parameters": "22M", "measured": {"qps": 40, "ttftMs": 12.5}},
            ),
            version("2", "hf://sentence-transformers/all-MiniLM-L6-v2", weight=10, note="fp16"),
        ],
    )
    result = models("list", str(platform), "-o", "json", state=tmp_path)
    assert result.returncode == 0, result.stderr
    v1, v2 = json.loads(result.stdout)["versions"]
    assert (v1["weight"], v2["weight"]) == (90, 10)
    assert (v1["parameters"], v1["measuredQps"], v1["measuredTtftMs"]) == ("22M", 40, 12.5)
    assert v2["note"] == "fp16" and v2["scheme"] == "hf"


def test_show_unknown_model_is_one_line_naming_the_known_ones(tmp_path: Path):
    result = models("show", str(EXAMPLES / "quickstart.yaml"), "nope", state=tmp_path)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: {EXAMPLES / 'quickstart.yaml'}: spec.models: no model 'nope' "
        "(models: chat, embedding)"
    ]
    assert result.stdout == ""


def test_show_check_passes_on_a_correct_file_source(tmp_path: Path, source: Path):
    platform = write_platform(
        tmp_path,
        [
            version(
                "1.0",
                source.as_uri(),
                checksums=CHECKSUMS,
                sizeBytes=MODEL_BYTES,
                note="first",
                metadata={"hardware": ["cpu"], "labels": {"team": "search"}},
            ),
            version("1.1", "hf://sentence-transformers/all-MiniLM-L6-v2"),
        ],
    )
    result = models("show", str(platform), "embedding", "--check", "-o", "json", state=tmp_path)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)["model"]
    first, second = model["versions"]
    assert first["registeredName"] == "embedding-v1_0" and first["weight"] == 100
    assert first["checksums"] == CHECKSUMS and first["sizeBytes"] == MODEL_BYTES
    assert first["metadata"]["labels"] == {"team": "search"} and first["instances"] is None
    assert first["check"] == {
        "scheme": "file",
        "checked": True,
        "files": 3,
        "totalBytes": MODEL_BYTES,
        "checksumsVerified": 2,
        "note": "ok",
    }
    assert second["check"]["checked"] is False
    assert second["check"]["note"] == "not checked (hub source; Xinference downloads it)"


def test_show_table_has_every_section(tmp_path: Path, source: Path):
    platform = write_platform(
        tmp_path, [version("1", source.as_uri(), checksums=CHECKSUMS, sizeBytes=MODEL_BYTES)]
    )
    result = models("show", str(platform), "embedding", "--check", state=tmp_path)
    assert result.returncode == 0, result.stderr
    titles = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert titles == [
        "# Model embedding (sources): type embedding, tier P1, architecture all-minilm-l6-v2",
        "# Version details",
        "# Source checks",
    ]
    digest = CHECKSUMS["model.safetensors"]
    assert re.search(rf"^1 +sha256 model\.safetensors +{digest}$", result.stdout, re.M)
    assert re.search(rf"^1 +sizeBytes +{MODEL_BYTES:,}$", result.stdout, re.M)
    yaml = models("show", str(platform), "embedding", "-o", "yaml", state=tmp_path)
    doc = YAML(typ="safe").load(yaml.stdout)
    assert doc["model"]["versions"][0]["source"] == source.as_uri()


def _corrupt(kind: str, source: Path, fields: dict[str, Any]) -> str:
    """Break the source (or the declaration) one way; return what the error must name."""
    if kind == "checksum":
        (source / "model.safetensors").write_bytes(WEIGHTS[:-1] + b"X")
        return (
            f"model.safetensors: sha256 mismatch (expected {CHECKSUMS['model.safetensors'][:12]}"
            f"..., got {sha256(WEIGHTS[:-1] + b'X')[:12]}...)"
        )
    if kind == "missing-file":
        (source / "config.json").unlink()
        return "config.json (listed in checksums) is missing"
    if kind == "size":
        (source / "tokenizer" / "vocab.txt").write_bytes(VOCAB + b"extra\n")
        return f"holds {MODEL_BYTES + 6:,} bytes in 3 files but sizeBytes is {MODEL_BYTES:,}"
    if kind == "empty-weights":
        fields.pop("checksums")
        fields.pop("sizeBytes")
        (source / "model.safetensors").write_bytes(b"")
        return "model.safetensors is empty (0 bytes)"
    assert kind == "missing-source"
    for path in sorted(source.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    source.rmdir()
    return f"{source} does not exist"


@pytest.mark.parametrize(
    "kind", ["checksum", "missing-file", "size", "empty-weights", "missing-source"]
)
def test_show_check_fails_in_one_line_naming_the_problem(tmp_path: Path, source: Path, kind):
    fields: dict[str, Any] = {"checksums": dict(CHECKSUMS), "sizeBytes": MODEL_BYTES}
    expected = _corrupt(kind, source, fields)
    platform = write_platform(tmp_path, [version("1", source.as_uri(), **fields)])
    result = models("show", str(platform), "embedding", "--check", state=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: model 'embedding' version '1': {source.as_uri()}: ")
    assert expected in errors[0]
    assert "FAILED (see the error below)" in result.stdout  # the tables still print
    assert "Traceback" not in result.stderr


def test_relative_file_source_is_refused_where_it_is_written(tmp_path: Path, source: Path):
    relative = os.path.relpath(source, tmp_path)
    platform = write_platform(tmp_path, [version("1", f"file://{relative}")])
    result = models("show", str(platform), "embedding", "--check", state=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    (error,) = error_lines(result.stderr)
    assert re.match(rf"^error: {re.escape(str(platform))}:\d+:\d+: spec\.models\[0\]", error)
    assert "a file:// source is an absolute path, as Xinference reads it" in error
    assert "file:///PATH" in error


def test_show_without_check_does_not_read_the_source(tmp_path: Path, source: Path):
    platform = write_platform(
        tmp_path, [version("1", (tmp_path / "absent").as_uri(), checksums=CHECKSUMS)]
    )
    result = models("show", str(platform), "embedding", "-o", "json", state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "check" not in json.loads(result.stdout)["model"]["versions"][0]
