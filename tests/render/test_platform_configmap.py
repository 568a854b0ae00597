"""The platform ConfigMap carries what the in-cluster commands need: its keys, written as the
files of the folder it is mounted as (/etc/xpool), load and plan as the original file does,
config.json files named by `architecture: {config: ...}` included, with `-n` applied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLES, ROOT, run_xpool

CONFIGS = ROOT / "tests" / "data" / "hf-configs"
TEAM = "team-b"
HEADER = """\
# A platform whose chat models are described by their own config.json files.
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata:
  name: configs
spec:
  kubernetes:
    namespace: configs
  images:
    xinference:
      ascend: registry.example.com/xinference-ascend:v4.1.0
  pools:
    - name: ascend910b
      vendor: ascend
      accelerator: ascend-910b
      nodes: 2
      acceleratorsPerNode: 8
  models:
"""


def model(name: str, architecture: str) -> str:
    return f"""\
    - name: {name}
      tier: P1
      architecture: {architecture}   # kept: only the path changes
      versions:
        - {{version: "1", source: "hf://org/{name}", engines: {{ascend: vllm-ascend}}}}
      context: {{batch: 8, seqLen: 4096, outputTokens: 256}}
      demand: {{peakQps: 4}}
"""


def copy_config(hf_name: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIGS / hf_name / "config.json", dest)
    return dest


def ok(*args: str) -> str:
    result = run_xpool(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def in_cluster(path: Path, folder: Path, *extra: str) -> dict[str, str]:
    """Render `path`, then lay out its platform ConfigMap in `folder` as the kubelet mounts it
    for the gateway and the reconciler: each key at the path their volume's items give.
    Returns the ConfigMap's data."""
    items = json.loads(ok("render", str(path), "-o", "json", *extra))["items"]
    (configmap,) = [
        o for o in items if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "xpool-platform"
    ]
    volumes = [
        v
        for o in items
        if o["kind"] in ("StatefulSet", "CronJob")
        for v in _pod(o).get("volumes", [])
        if v.get("configMap", {}).get("name") == "xpool-platform"
    ]
    assert len(volumes) == 2  # the gateway's and the reconciler's, alike
    assert volumes[0] == volumes[1]
    for item in volumes[0]["configMap"]["items"]:
        target = folder / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmap["data"][item["key"]], encoding="utf-8")
    assert {i["key"] for i in volumes[0]["configMap"]["items"]} == set(configmap["data"])
    return configmap["data"]


def _pod(obj: dict) -> dict:
    template = obj["spec"].get("jobTemplate", obj)["spec"]["template"]
    return template["spec"]


def test_in_cluster_copy_plans_and_renders_as_the_original(tmp_path):
    work = tmp_path / "work"
    copy_config("Qwen__Qwen2.5-0.5B", work / "models" / "qwen" / "config.json")
    copy_config("mistralai__Mistral-7B-v0.1", tmp_path / "sibling" / "mistral" / "config.json")
    absolute = copy_config("google__gemma-2-9b-it", tmp_path / "abs" / "gemma 2" / "config.json")
    # another file in a folder of the same name: it must get a key of its own
    copy_config("Qwen__Qwen3-30B-A3B", tmp_path / "other" / "qwen" / "config.json")
    platform = work / "platform.yaml"
    platform.write_text(
        HEADER
        + model("chat", "{config: models/qwen/config.json}")
        + model("chat-again", "{config: ./models/qwen/../qwen/config.json}")  # the same file
        + model("mistral", "{config: ../sibling/mistral/config.json}")
        + model("gemma", f"{{config: '{absolute}'}}")
        + model("moe", "\n        config: ../other/qwen/config.json")
        + model("catalog", "qwen2.5-7b-instruct"),
        encoding="utf-8",
    )

    etc = tmp_path / "etc-xpool"
    data = in_cluster(platform, etc, "-n", TEAM)
    assert sorted(data) == [f"config-{n}.json" for n in range(1, 5)] + ["platform.yaml"]
    assert data["config-1.json"] == (work / "models" / "qwen" / "config.json").read_text()
    assert data["config-4.json"] == (tmp_path / "other" / "qwen" / "config.json").read_text()
    # only the namespace and the config paths changed, comments and layout are kept
    changed = [
        (old.split("config:")[-1].strip(), new.split("config:")[-1].strip())
        for old, new in zip(
            platform.read_text().splitlines(), data["platform.yaml"].splitlines(), strict=True
        )
        if old != new
    ]
    kept = "   # kept: only the path changes"
    assert changed == [
        ("namespace: configs", f"namespace: {TEAM}"),
        ("models/qwen/config.json}" + kept, "configs/1/qwen/config.json}" + kept),
        ("./models/qwen/../qwen/config.json}" + kept, "configs/1/qwen/config.json}" + kept),
        ("../sibling/mistral/config.json}" + kept, "configs/2/mistral/config.json}" + kept),
        (f"'{absolute}'}}" + kept, '"configs/3/gemma 2/config.json"}' + kept),
        ("../other/qwen/config.json" + kept, "configs/4/qwen/config.json" + kept),
    ]

    platform_yaml = etc / "platform.yaml"
    assert "6 models" in run_xpool("validate", str(platform_yaml)).stderr
    assert ok("plan", str(platform_yaml), "-o", "json") == ok("plan", str(platform), "-o", "json")
    # what the in-cluster copy renders is what `render -n` renders: registrations (which
    # name each architecture), the ConfigMap and its volumes too
    assert ok("render", str(platform_yaml), "-o", "json") == ok(
        "render", str(platform), "-o", "json", "-n", TEAM
    )


def test_a_path_written_over_two_lines_is_replaced_too(tmp_path):
    copy_config("Qwen__Qwen2.5-0.5B", tmp_path / "models" / "qwen 0.5b" / "config.json")
    platform = tmp_path / "platform.yaml"
    platform.write_text(
        HEADER + model("chat", "\n        config: models/qwen\n          0.5b/config.json"),
        encoding="utf-8",
    )
    etc = tmp_path / "etc-xpool"
    data = in_cluster(platform, etc)
    written = YAML(typ="safe").load(data["platform.yaml"])["spec"]["models"][0]["architecture"]
    assert written == {"config": "configs/1/qwen 0.5b/config.json"}
    platform_yaml = etc / "platform.yaml"
    assert ok("plan", str(platform_yaml), "-o", "json") == ok("plan", str(platform), "-o", "json")


@pytest.mark.parametrize("kubernetes", [True, False])
def test_a_configmap_over_1_mib_is_refused_at_the_config_that_crosses_it(tmp_path, kubernetes):
    config = json.loads((CONFIGS / "Qwen__Qwen2.5-0.5B" / "config.json").read_text())
    config["_notes"] = "x" * (1024 * 1024)  # a key the planner does not read
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "config.json").write_text(json.dumps(config))
    text = HEADER + model("chat", "{config: big/config.json}")
    if not kubernetes:  # nothing is carried into a cluster: the file is valid
        text = text.replace("  kubernetes:\n    namespace: configs\n", "")
    platform = tmp_path / "platform.yaml"
    platform.write_text(text, encoding="utf-8")
    result = run_xpool("validate", str(platform))
    if not kubernetes:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    (line,) = [n for n, t in enumerate(text.splitlines(), 1) if "big/config.json" in t]
    column = text.splitlines()[line - 1].index("big/") + 1
    (error,) = result.stderr.splitlines()
    assert error.startswith(
        f"error: {platform}:{line}:{column}: spec.models[0].architecture.config: with this "
        "config.json ("
    )
    assert "the ConfigMap xpool-platform" in error and "over the 1,048,576 bytes" in error
    assert "keep only the keys the planner reads" in error


def test_a_platform_file_over_1_mib_is_refused_with_spec_kubernetes(tmp_path):
    text = (EXAMPLES / "ascend-only.yaml").read_text(encoding="utf-8")
    platform = tmp_path / "platform.yaml"
    platform.write_text(text + ("# padding\n" * 110_000), encoding="utf-8")
    for command in ("validate", "plan", "render"):
        result = run_xpool(command, str(platform))
        assert result.returncode == 2 and result.stdout == ""
        (error,) = result.stderr.splitlines()
        assert error.startswith(f"error: {platform}:1:1: the ConfigMap xpool-platform")
        size = len(platform.read_bytes())
        assert f"would hold {size:,} bytes, over the 1,048,576 bytes (1 MiB)" in error
        assert "shorten the file or split the platform" in error
