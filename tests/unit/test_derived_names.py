"""Cluster-scoped names: the platform namespace in each, a DNS label's length at most, and the
references to them following (what `xpool render -n` gives two namespaces)."""

from __future__ import annotations

import re

from tests.conftest import EXAMPLES
from xpool.config.derived_names import MAX_OBJECT_NAME, bounded
from xpool.render import render_platform
from xpool.render.checks import check_objects
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
