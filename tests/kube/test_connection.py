"""Connection settings (KUBECONFIG with several files, --context) and retries."""

from __future__ import annotations

import os

import yaml

from tests.kube.conftest import NS, run

DEAD = "https://127.0.0.1:1"  # nothing listens on port 1


def apply(path, *extra, env=None):
    return run("apply", str(path), "-o", "json", "--skip-models", *extra, env=env)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_kubeconfig_env_merges_several_files(cluster, kubeconfig, platform, tmp_path):
    config = yaml.safe_load(kubeconfig.read_text())
    # neither file works alone: one has the cluster and context, the other the credentials
    first = {**config, "users": [], "current-context": config["current-context"]}
    second = {"apiVersion": "v1", "kind": "Config", "users": config["users"]}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(first))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(second))
    merged = os.pathsep.join(
        [str(tmp_path / "a.yaml"), str(tmp_path / "missing.yaml"), str(tmp_path / "b.yaml")]
    )
    result = apply(platform(), env={"KUBECONFIG": merged})
    assert result.returncode == 0, result.stderr
    assert cluster.get("v1", "Namespace", NS) is not None
    assert all(
        {k.lower(): v for k, v in r.headers.items()}.get("authorization")
        == f"Bearer {cluster.token}"
        for r in cluster.requests
    )


def test_context_selects_and_unreachable_is_one_line(cluster, kubeconfig, platform, tmp_path):
    config = yaml.safe_load(kubeconfig.read_text())
    good = config["current-context"]
    config["clusters"].append({"name": "dead", "cluster": {"server": DEAD}})
    config["contexts"].append(
        {"name": "dead", "context": {"cluster": "dead", "user": config["users"][0]["name"]}}
    )
    config["current-context"] = "dead"
    two = tmp_path / "two-contexts.yaml"
    two.write_text(yaml.safe_dump(config))

    result = apply(platform(), "--kubeconfig", str(two), env={"XPOOL_KUBE_RETRY_ATTEMPTS": "2"})
    assert result.returncode == 3, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert f"cannot reach the Kubernetes API at {DEAD}" in lines[0]
    assert "check --kubeconfig/--context" in lines[0]
    assert "Traceback" not in result.stderr
    assert cluster.requests == []

    result = apply(platform(), "--kubeconfig", str(two), "--context", good)
    assert result.returncode == 0, result.stderr
    assert cluster.get("v1", "Namespace", NS) is not None

    result = apply(platform(), "--kubeconfig", str(two), "--context", "nope")
    assert result.returncode == 2
    assert "nope" in error_lines(result)[0]


def test_missing_kubeconfig_file_is_input_error(platform, tmp_path):
    result = apply(platform(), "--kubeconfig", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: --kubeconfig {tmp_path / 'absent.yaml'}: no such kubeconfig file: {tmp_path / 'absent.yaml'}"
    ]


def test_429_with_retry_after_is_retried(cluster, kubeconfig, platform):
    target = rf"/api/v1/namespaces/{NS}/configmaps/xpool-platform$"
    cluster.inject("PATCH", target, 429, times=1, retry_after=1)
    result = apply(platform(), "--kubeconfig", str(kubeconfig))
    assert result.returncode == 0, result.stderr
    hits = [
        r
        for r in cluster.requests
        if r.path.endswith("/configmaps/xpool-platform") and r.method == "PATCH"
    ]
    assert [r.status for r in hits][:2] == [429, 201]
    assert "retry: PATCH ConfigMap npu-qa/xpool-platform: HTTP 429" in result.stderr
    assert "waiting 1.0 s" in result.stderr
    assert cluster.get("v1", "ConfigMap", "xpool-platform", NS) is not None


def test_connection_drop_is_retried(cluster, kubeconfig, platform):
    cluster.inject_disconnect(
        "PATCH", r"/apis/scheduling.volcano.sh/v1beta1/queues/npu-qa-ascend910b$"
    )
    result = apply(platform(), "--kubeconfig", str(kubeconfig))
    assert result.returncode == 0, result.stderr
    assert "retry: PATCH Queue npu-qa-ascend910b" in result.stderr


def test_503_forever_gives_exit_3_and_one_line(cluster, kubeconfig, platform):
    target = rf"/api/v1/namespaces/{NS}/configmaps/xpool-launch-specs$"
    cluster.inject("*", target, 503, times=100)
    result = apply(
        platform(), "--kubeconfig", str(kubeconfig), env={"XPOOL_KUBE_RETRY_ATTEMPTS": "3"}
    )
    assert result.returncode == 3, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert f"ConfigMap {NS}/xpool-launch-specs" in lines[0]
    assert "GET failed after 3 attempts: HTTP 503" in lines[0]
    assert len([r for r in cluster.requests if r.path.endswith("/xpool-launch-specs")]) == 3


def test_4xx_is_not_retried(cluster, kubeconfig, platform):
    for status in (400, 422):
        target = rf"/api/v1/namespaces/{NS}/configmaps/xpool-launch-specs$"
        cluster.clear_log()
        cluster.inject("PATCH", target, status, times=5)
        result = apply(platform(), "--kubeconfig", str(kubeconfig))
        assert result.returncode == 3, result.stderr
        lines = error_lines(result)
        assert len(lines) == 1 and f"HTTP {status}" in lines[0], result.stderr
        assert f"ConfigMap {NS}/xpool-launch-specs: server-side apply refused" in lines[0]
        assert (
            len(
                [
                    r
                    for r in cluster.requests
                    if r.path.endswith("/xpool-launch-specs") and r.method == "PATCH"
                ]
            )
            == 1
        )
        assert "retry:" not in result.stderr
        cluster.faults.clear()
