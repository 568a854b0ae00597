"""In-cluster configuration (the reconciler CronJob's case), in process: the service account's
token and CA files are pointed at the contract server; no process-global client is set."""

from __future__ import annotations

from kubernetes import client as k8s_client
from kubernetes.config import incluster_config

from xpool.adapters.kube import Connection, KubeClient


def test_in_cluster_configuration_when_no_kubeconfig(kube_api, tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text(kube_api.token)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", kube_api.ca_file)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", kube_api.host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_api.port))
    monkeypatch.setattr(k8s_client.Configuration, "_default", None)

    client = KubeClient.connect(Connection())
    try:
        assert client.source == "in-cluster service account"
        assert client.configuration.verify_ssl is True
        assert client.resource("v1", "ConfigMap").plural == "configmaps"
    finally:
        client.close()
    assert k8s_client.Configuration._default is None  # nothing process-global was touched
    assert kube_api.requests[-1].path == "/api/v1"


def test_kubeconfig_flag_wins_over_in_cluster(kube_api, kubeconfig, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(k8s_client.Configuration, "_default", None)
    client = KubeClient.connect(Connection(kubeconfig=str(kubeconfig)))
    try:
        assert client.host == kube_api.url
        assert client.resource("scheduling.volcano.sh/v1beta1", "Queue").namespaced is False
        assert client.resource("scheduling.volcano.sh/v1beta1", "Nope") is None
        assert client.resource("example.com/v1", "Thing") is None
    finally:
        client.close()
    assert k8s_client.Configuration._default is None
