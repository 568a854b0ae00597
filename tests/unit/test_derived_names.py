"""Cluster-scoped names: the platform namespace in each, a DNS label's length at most, and the
references to them following (what `xpool render -n` gives two namespaces)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from xpool.actions.render import render_checked
from xpool.config.derived_names import MAX_OBJECT_NAME, bounded
from xpool.errors import InputError
from xpool.render import render_platform
from xpool.render.checks import DEFAULT_K8S_VERSION, check_objects
from xpool.resolve import resolve_platform

CLUSTER_KINDS = {"PriorityClass", "Queue", "ClusterRole", "ClusterRoleBinding"}


def render(namespace: str) -> list[dict]:
    resolved = resolve_platform(EXAMPLES / "ascend-only.yaml", namespace=namespace)
    rendering = render_platform(
        resolved.platform, resolved.plan, resolved.architectures, resolved.mount
    )
    objs = [o.obj for o in rendering.objects]
    assert check_objects(objs) == []
    return objs


def cluster_names(objs: list[dict]) -> set[str]:
    return {o["metadata"]["name"] for o in objs if o["kind"] in CLUSTER_KINDS}


def test_bounded_keeps_short_names_and_hashes_long_ones() -> None:
    assert bounded("team-a-p0-gpu") == "team-a-p0-gpu"
    assert bounded("x" * MAX_OBJECT_NAME) == "x" * MAX_OBJECT_NAME
    one, two = "a" * 60 + "-p0-gpu", "a" * 60 + "-p1-gpu"
    assert len(bounded(one)) == MAX_OBJECT_NAME
    assert re.fullmatch(r"a{54}-[0-9a-f]{8}", bounded(one))
    assert bounded(one) == bounded(one) != bounded(two)
    # a cut at a hyphen leaves no double hyphen
    assert "--" not in bounded("a" * 53 + "-" + "b" * 20)


def test_two_namespaces_share_no_cluster_scoped_name() -> None:
    team_a, team_b = render("team-a"), render("team-b")
    names_a, names_b = cluster_names(team_a), cluster_names(team_b)
    assert len(names_a) == len(names_b) == 8  # the binding shares its ClusterRole's name
    assert not names_a & names_b
    assert all(n.startswith(("team-a-", "xpool-team-a-")) for n in names_a)


def test_long_namespaces_give_distinct_names_within_a_label() -> None:
    """Two namespaces of 63 characters that differ only at the end: every name is cut, and
    still theirs alone; every reference names what is rendered (check_objects passed)."""
    first, second = "n" * 62 + "a", "n" * 62 + "b"
    objs = render(first)
    names = cluster_names(objs)
    assert len(names) == 8 and all(len(n) <= MAX_OBJECT_NAME for n in names)
    assert not names & cluster_names(render(second))
    queues = {o["metadata"]["name"] for o in objs if o["kind"] == "Queue"}
    role = next(o for o in objs if o["kind"] == "ClusterRole")
    assert set(role["rules"][0]["resourceNames"]) < queues  # the tiers' queues, no parent
    binding = next(o for o in objs if o["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    jobs = [o for o in objs if o["kind"] == "Job"]
    classes = {o["metadata"]["name"] for o in objs if o["kind"] == "PriorityClass"}
    for job in jobs:
        assert job["spec"]["queue"] in queues
        assert job["spec"]["priorityClassName"] in classes


PLATFORM = """\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata:
  name: mini
spec:
  kubernetes:
    namespace: names
  tiers:
    - {{name: {tier}, share: 1.0, priority: 10, borrow: true}}
  pools:
    - {{name: {pool}, vendor: nvidia, accelerator: rtx-5090, nodes: {nodes}, acceleratorsPerNode: 8}}
  models:
    - name: chat
      tier: {tier}
      architecture: qwen2.5-7b-instruct
      versions:
        - {{version: "1.0.0", source: "hf://Qwen/Qwen2.5-7B-Instruct"}}
      demand: {{peakQps: 10, baseQps: 2}}
"""


def validate_then_render(tmp_path: Path, tier: str, pool: str, nodes: int) -> tuple[str, str]:
    """validate's and render's first error ('' when each passes)."""
    file = tmp_path / f"{len(tier)}-{len(pool)}-{nodes}.yaml"
    file.write_text(PLATFORM.format(tier=tier, pool=pool, nodes=nodes), encoding="utf-8")
    try:
        resolved = resolve_platform(file)
    except InputError as exc:
        return str(exc.problems[0]), ""
    try:
        render_checked(resolved, DEFAULT_K8S_VERSION)
    except InputError as exc:
        return "", str(exc.problems[0])
    return "", ""


@pytest.mark.parametrize("nodes", [1, 12])
def test_validate_refuses_every_name_render_would(tmp_path: Path, nodes: int) -> None:
    """Around the limit, a tier or pool name validate accepts renders, and the longest one
    accepted is exactly at the limit of the longest pod name (burst Job, a pod per node)."""
    index = len(str(nodes - 1))
    longest_tier = MAX_OBJECT_NAME - len("xinference--gpu-burst-worker-8-") - index
    for length in range(longest_tier - 2, longest_tier + 12):
        refused, failed = validate_then_render(tmp_path, "t" * length, "gpu", nodes)
        assert failed == "", failed
        assert bool(refused) == (length > longest_tier), (length, refused)
        if refused:
            assert "spec.tiers[0].name: the derived pod name" in refused, refused
            assert f"at most {longest_tier} characters" in refused, refused
    longest_pool = MAX_OBJECT_NAME - len("xinference-t--burst-worker-8-") - index
    refused, failed = validate_then_render(tmp_path, "t", "p" * (longest_pool + 1), nodes)
    assert "spec.pools[0].name: the derived pod name" in refused and failed == ""
    assert f"at most {longest_pool} characters" in refused
