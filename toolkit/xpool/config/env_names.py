"""Environment variable names the platform file may give to a credential.

`apiKeysEnv`, `apiKeyEnv` and `bearerTokenEnv` name the variable a credential is read from;
on Kubernetes the first two are also set from Secret xpool-credentials in the gateway's and
the reconciler's containers. A name the container, the image or xpool itself already uses
would replace that value (`PATH` holding the client keys leaves the gateway unable to start
a program) or hand the credential to whatever reads it (a proxy, the dynamic loader, Python),
so such names are refused. Compared in upper case: programs read `http_proxy` as well.
"""

from __future__ import annotations

# Set by the shell, the base image or Kubernetes, or read by the loader, Python, pip, TLS
# and HTTP clients.
_SYSTEM = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "SHELL",
        "PWD",
        "HOSTNAME",
        "LANG",
        "TERM",
        "TMPDIR",
        "TZ",
        "GPG_KEY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
# What xpool reads or sets in its containers (grep XPOOL_ in toolkit/; a test keeps this
# list complete): the kube client's retry settings, the debug switch, the worker's labels,
# the gateway's pod name, Xinference's home, the kubeconfig, the terminal colours.
_XPOOL = frozenset(
    {
        "XPOOL_DEBUG",
        "XPOOL_TIER",
        "XPOOL_POOL",
        "XPOOL_NODE",
        "XPOOL_ACCELERATORS",
        "XPOOL_VENV",
        "POD_NAME",
        "POD_IP",
        "KUBECONFIG",
        "NO_COLOR",
    }
)
RESERVED_NAMES = _SYSTEM | _XPOOL
# The dynamic loader (LD_PRELOAD), Python and pip, Kubernetes' service links, the S3 client's
# AWS_* settings, XDG folders, Xinference's own settings, CUDA and the NVIDIA runtime.
RESERVED_PREFIXES = (
    "LD_",
    "PYTHON",
    "PIP_",
    "XPOOL_KUBE_",
    "KUBERNETES_",
    "AWS_",
    "XDG_",
    "XINFERENCE_",
    "CUDA_",
    "NVIDIA_",
)


def not_reserved(name: str) -> str:
    """`name` unless a container, its image or xpool already uses it; ValueError saying so."""
    upper = name.upper()
    prefix = next((p for p in RESERVED_PREFIXES if upper.startswith(p)), None)
    if upper in RESERVED_NAMES or prefix is not None:
        what = f"names starting with {prefix} are" if prefix else f"'{name}' is"
        raise ValueError(
            f"{what} used by the container, its image or xpool itself: the credential would "
            "replace or leak that value; name a variable of your own, e.g. "
            "XPOOL_GATEWAY_API_KEYS"
        )
    return name
