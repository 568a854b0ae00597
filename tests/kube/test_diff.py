"""`xpool diff`: exit 0 when nothing would change, 1 when something would; never a write."""

from __future__ import annotations

from tests.kube.conftest import NS, ONE_POOL, run, two_pools


def diff(path, kubeconfig, *extra):
    return run("diff", str(path), "--kubeconfig", str(kubeconfig), *extra)


def apply(path, kubeconfig):
    result = run("apply", str(path), "--kubeconfig", str(kubeconfig), "--skip-models")
    assert result.returncode == 0, result.stderr
    return result


def test_diff_before_apply_shows_creations(cluster, kubeconfig, platform):
    result = diff(platform(), kubeconfig)
    assert result.returncode == 1, result.stderr
    assert "--- live/Namespace/npu-qa\n+++ rendered/Namespace/npu-qa\n" in result.stdout
    assert f"+++ rendered/ConfigMap/{NS}/xpool-platform" in result.stdout
    assert cluster.writes() == []


def test_diff_is_clean_after_apply_and_shows_a_change(cluster, kubeconfig, platform):
    apply(platform(), kubeconfig)
    cluster.clear_log()
    result = diff(platform(), kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "no changes" in result.stderr
    assert cluster.writes() == []

    changed = ONE_POOL.replace("peakQps: 10, baseQps: 2", "peakQps: 12, baseQps: 2")
    result = diff(platform(changed), kubeconfig)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert (
        f"--- live/ConfigMap/{NS}/xpool-platform\n+++ rendered/ConfigMap/{NS}/xpool-platform\n"
        in out
    )
    lines = out.splitlines()
    assert any(x.startswith("-") and x.endswith("demand: {peakQps: 10, baseQps: 2}") for x in lines)
    assert any(x.startswith("+") and x.endswith("demand: {peakQps: 12, baseQps: 2}") for x in lines)
    # bookkeeping never shows up
    for noise in ("managedFields", "resourceVersion", "creationTimestamp", "uid:"):
        assert noise not in out
    assert cluster.writes() == []


def test_diff_shows_pruned_objects_as_deletions(cluster, kubeconfig, platform):
    apply(platform(two_pools()), kubeconfig)
    cluster.clear_log()
    result = diff(platform(), kubeconfig)
    assert result.returncode == 1, result.stderr
    assert (
        "--- live/Queue/npu-qa-p0-rtx5090\n+++ rendered/Queue/npu-qa-p0-rtx5090\n" in result.stdout
    )
    assert f"--- live/Job/{NS}/xinference-p2-rtx5090" in result.stdout
    assert cluster.writes() == []
    # --no-prune: the dropped pool's objects are not shown
    result = diff(platform(), kubeconfig, "--no-prune")
    assert "--- live/Queue/npu-qa-p0-rtx5090" not in result.stdout
    assert f"--- live/Job/{NS}/xinference-p2-rtx5090" not in result.stdout
