"""What every object group shares: the platform, its namespace, the labels, the mounted file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpool.capacity.borrowing import TierPoolShare, tier_pool_shares
from xpool.config.models import KubernetesSpec, Platform, PlatformSpec, Tier
from xpool.config.mounted import PLATFORM_KEY, Mount
from xpool.render.object_names import CREDENTIALS_SECRET, MOUNT, PLATFORM_CONFIGMAP


def _from_secret(name: str, *, optional: bool) -> dict[str, Any]:
    """Environment variable `name` from the key of the same name in the credentials Secret."""
    ref = {"name": CREDENTIALS_SECRET, "key": name, "optional": optional}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


@dataclass(frozen=True)
class BuildContext:
    platform: Platform
    namespace: str
    tiers: list[Tier]  # highest priority first, then by name
    shares: dict[str, dict[str, TierPoolShare]]  # pool -> tier -> its accelerators there
    mount: Mount  # the platform ConfigMap and where its volume places each key

    @classmethod
    def of(cls, platform: Platform, mount: Mount) -> BuildContext:
        kubernetes = platform.spec.kubernetes
        assert kubernetes is not None
        tiers = sorted(platform.spec.tiers, key=lambda t: (-t.priority, t.name))
        shares = {
            pool.name: tier_pool_shares(
                platform.spec.tiers, pool.nodes * pool.accelerators_per_node
            )
            for pool in platform.spec.pools
        }
        return cls(platform, kubernetes.namespace, tiers, shares, mount)

    @property
    def spec(self) -> PlatformSpec:
        return self.platform.spec

    @property
    def kubernetes(self) -> KubernetesSpec:
        kubernetes = self.spec.kubernetes
        assert kubernetes is not None  # render_platform renders nothing without it
        return kubernetes

    @property
    def part_of(self) -> str:
        return self.platform.metadata.name

    def labels(self, component: str, **extra: str) -> dict[str, str]:
        """The recommended app.kubernetes.io labels, and `xpool.io/<key>` for each of `extra`."""
        base = {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": self.part_of,
            "app.kubernetes.io/managed-by": "xpool",
        }
        base.update({f"xpool.io/{k}": v for k, v in extra.items()})
        return base

    def selector(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": self.part_of}

    @property
    def secret_env(self) -> list[dict[str, Any]]:
        """The Xinference API key from Secret xpool-credentials, when the platform names one."""
        key_env = self.spec.xinference.api_key_env
        return [_from_secret(key_env, optional=True)] if key_env else []

    @property
    def client_keys_env(self) -> list[dict[str, Any]]:
        """The gateway's client API keys from Secret xpool-credentials, when the platform
        requires them: not optional, so without them the gateway pod does not start."""
        keys_env = self.spec.gateway.api_keys_env
        return [_from_secret(keys_env, optional=False)] if keys_env else []

    @property
    def batch_store_env(self) -> list[dict[str, Any]]:
        """The S3 settings of an s3:// batch store, from Secret xpool-credentials: the keys
        required (the gateway must not start without them), the rest optional."""
        if not self.spec.batch.store.startswith("s3://"):
            return []
        required = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        optional = ("AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL")
        return [_from_secret(n, optional=False) for n in required] + [
            _from_secret(n, optional=True) for n in optional
        ]

    @property
    def platform_path(self) -> str:
        """Where the gateway and the reconciler read the platform file (`config_mount`)."""
        return f"{MOUNT}/{PLATFORM_KEY}"

    @property
    def config_volume(self) -> list[dict[str, Any]]:
        config_map = {"name": PLATFORM_CONFIGMAP, "items": self.mount.items()}
        return [{"name": "platform", "configMap": config_map}]

    @property
    def config_mount(self) -> list[dict[str, Any]]:
        return [{"name": "platform", "mountPath": MOUNT, "readOnly": True}]
