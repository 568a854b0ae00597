"""Click options shared by several commands (one definition each, same help everywhere)."""

from __future__ import annotations

import click

from xpool.logs import FORMATS as LOG_FORMATS
from xpool.render.checks import DEFAULT_K8S_VERSION


def namespace_option(func):
    """-n/--namespace: the platform namespace, the same override in every command."""
    return click.option(
        "-n",
        "--namespace",
        default=None,
        help="Platform namespace; overrides spec.kubernetes.namespace for every namespaced "
        "object (and the references to it, the platform ConfigMap's copy of the file too).",
    )(func)


def connection_options(func):
    """--kubeconfig, --context, -n/--namespace (shared by the commands that talk to a cluster)."""
    func = namespace_option(func)
    func = click.option(
        "--context", default=None, help="kubeconfig context to use (default: current-context)."
    )(func)
    func = click.option(
        "--kubeconfig",
        default=None,
        help="kubeconfig file(s), separated by ':' like KUBECONFIG. Default: $KUBECONFIG, "
        "then the in-cluster service account, then ~/.kube/config.",
    )(func)
    return func


def kubernetes_version_option(func):
    """--kubernetes-version: the schemas the rendered objects are checked against."""
    return click.option(
        "--kubernetes-version",
        default=DEFAULT_K8S_VERSION,
        show_default=True,
        help="Kubernetes minor version whose OpenAPI schemas the rendered objects must pass.",
    )(func)


def state_dir_option(func):
    """--state-dir: where `xpool up` keeps its state for this platform."""
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="State directory of the running `xpool up` [default: $XDG_STATE_HOME/xpool/<platform>].",
    )(func)


def log_format_option(func):
    """--log-format for the long-running commands (up, reconcile, gateway)."""
    return click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS),
        default="text",
        show_default=True,
        help="Progress on stderr as plain lines or as one JSON object per line.",
    )(func)
