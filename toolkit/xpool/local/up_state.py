"""The state file a running `xpool up` leaves in its state directory (`up.json`), typed.

Every other local command (`status`, `scale`, `models`, `rollout`, `reconcile`) finds the
running pieces through it: the Xinference endpoint, the gateway and its admin token file, the
local Prometheus. A file whose writer is dead is treated as absent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from xpool.errors import RemoteError
from xpool.local.runtime import UP_FILE, default_state_dir, pid_alive, read_json


def state_dir_for(platform_name: str, override: str | Path | None) -> Path:
    """`--state-dir`, else $XDG_STATE_HOME/xpool/<platform>."""
    return Path(override) if override else default_state_dir(platform_name)


@dataclass(frozen=True)
class UpState:
    platform: str
    endpoint: str  # Xinference
    gateway: str
    admin_token_file: Path
    prometheus: str | None = None
    xinference_pid: int | None = None
    pid: int = 0  # the `xpool up` process

    def write(self, state_dir: Path) -> Path:
        path = state_dir / UP_FILE
        data = {
            "pid": self.pid or os.getpid(),
            "platform": self.platform,
            "endpoint": self.endpoint,
            "gateway": self.gateway,
            "adminTokenFile": str(self.admin_token_file),
            "prometheus": self.prometheus,
            "xinferencePid": self.xinference_pid,
        }
        path.write_text(json.dumps(data) + "\n")
        return path

    def admin_token(self) -> str:
        """The gateway's admin token (never printed); exit 3 when it cannot be read."""
        try:
            return self.admin_token_file.read_text().strip()
        except OSError as exc:
            raise RemoteError(
                f"cannot read the admin token {self.admin_token_file}: {exc}"
            ) from None


def read_up_state(state_dir: Path) -> UpState | None:
    """The running `xpool up` of this state directory, or None (no file, unreadable, or
    its process is gone)."""
    info = read_json(state_dir / UP_FILE)
    if not info or not pid_alive(int(info.get("pid", 0) or 0)):
        return None
    try:
        return UpState(
            platform=str(info["platform"]),
            endpoint=str(info["endpoint"]),
            gateway=str(info["gateway"]),
            admin_token_file=Path(info["adminTokenFile"]),
            prometheus=info.get("prometheus"),
            xinference_pid=info.get("xinferencePid"),
            pid=int(info["pid"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def supervised_locally(endpoint: str, state_dir: str | Path | None) -> bool:
    """Whether `xpool up` supervises the platform rather than a cluster: its Xinference is the
    embedded one, or `--state-dir` names a running `xpool up` (which may front a remote
    Xinference: `xpool up` serves either)."""
    if endpoint == "embedded":
        return True
    return state_dir is not None and read_up_state(Path(state_dir)) is not None


def require_up_state(platform_name: str, state_dir: Path) -> UpState:
    """The running `xpool up`, or exit 3 saying how to start one."""
    up = read_up_state(state_dir)
    if up is None:
        raise RemoteError(
            f"no `xpool up` is running for {platform_name} (state dir {state_dir}); "
            "start one with `xpool up FILE` or pass --state-dir"
        )
    return up
