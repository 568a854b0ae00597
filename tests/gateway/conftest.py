from tests.contract.conftest import kube_api, kubeconfig  # noqa: F401
