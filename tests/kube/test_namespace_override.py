"""`-n/--namespace` means one namespace everywhere: every namespaced object `apply -n` sends,
the platform ConfigMap's copy of the file (which in-cluster commands load), `render -n` and
`diff -n` agree."""

from __future__ import annotations

import json

from ruamel.yaml import YAML

from tests.contract.apiserver import RESOURCES
from tests.kube.conftest import NS, ONE_POOL, VOLCANO_NS, run

TEAM = "team-b"


def rendered(path, *extra: str) -> list[dict]:
    result = run("render", str(path), "-o", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]


def test_apply_n_moves_every_namespaced_object_and_the_platform_copy(
    cluster, kubeconfig, platform, tmp_path
):
    path = platform()
    result = run("apply", str(path), "--kubeconfig", str(kubeconfig), "-n", TEAM, "--skip-models")
    assert result.returncode == 0, result.stderr

    # every object the file puts in its own namespace is in team-b, under the same name;
    # Volcano's scheduler configuration stays in volcano-system
    for obj in rendered(path):
        meta = obj["metadata"]
        if meta.get("namespace") == NS:
            where = (obj["apiVersion"], obj["kind"], meta["name"])
            assert cluster.get(*where, TEAM) is not None, where
            assert cluster.get(*where, NS) is None, where
        elif obj["kind"] == "Namespace":
            assert meta["name"] == NS
            assert cluster.get("v1", "Namespace", TEAM) is not None
            assert cluster.get("v1", "Namespace", NS) is None
    for rt in RESOURCES:
        if rt.namespaced:
            assert cluster.objects(rt.api_version, rt.kind, NS) == [], rt.kind
    in_volcano = cluster.objects("v1", "ConfigMap", VOLCANO_NS)
    assert [c["metadata"]["name"] for c in in_volcano] == ["volcano-scheduler-configmap"]

    # the platform ConfigMap carries the file with the override, comments kept
    text = cluster.get("v1", "ConfigMap", "xpool-platform", TEAM)["data"]["platform.yaml"]
    assert YAML(typ="safe").load(text)["spec"]["kubernetes"]["namespace"] == TEAM
    assert f"namespace: {NS}" not in text
    comments = [line for line in ONE_POOL.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in text.splitlines() for line in comments)

    # that copy, loaded as the in-cluster commands load it, renders what `render -n` renders
    copy = tmp_path / "in-cluster.yaml"
    copy.write_text(text, encoding="utf-8")
    assert rendered(copy) == rendered(path, "-n", TEAM)

    # and `diff -n` compares against the same objects: nothing would change
    cluster.clear_log()
    result = run("diff", str(path), "--kubeconfig", str(kubeconfig), "-n", TEAM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no changes" in result.stderr
    assert cluster.writes() == []
