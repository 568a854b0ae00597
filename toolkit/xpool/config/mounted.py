"""The platform file and the config.json files it names, as the files of one folder.

In the cluster the gateway and the reconciler load the platform from a ConfigMap mounted as a
folder, where the paths of the workstation that rendered it do not exist. So the ConfigMap
carries each config.json under a key of its own, the volume places that key at
`configs/N/NAME/config.json` (NAME: the architecture's name, which the loader takes from
that folder, so registrations name the same architecture), and the ConfigMap's copy of the
platform file names that path. Loading the folder plans what the original file plans,
and rendering it again gives the same files (each path maps to itself).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from xpool.config.loader import ConfigFile, config_key

PLATFORM_KEY = "platform.yaml"
# A plain or quoted YAML scalar where the parser says a value starts.
SCALAR = re.compile(r"""'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^\s#,\]}]+""")
PLAIN = re.compile(r"^[-./_a-zA-Z0-9]+$")  # written as is; any other path is quoted


@dataclass(frozen=True)
class Mount:
    """The platform ConfigMap's data, and where its volume places each key (`items`)."""

    data: dict[str, str]  # key -> text
    paths: dict[str, str]  # key -> path inside the mounted folder
    first_model: dict[str, int]  # config key -> the first model naming it (for errors)

    def items(self) -> list[dict[str, str]]:
        return [{"key": key, "path": path} for key, path in self.paths.items()]


def mounted(text: str, configs: Sequence[ConfigFile]) -> Mount:
    """`platform.yaml` (`text` naming each config.json by its path in the folder) and one
    key per config.json file, `config-N.json`; one file named twice is carried once."""
    data, paths = {PLATFORM_KEY: text}, {PLATFORM_KEY: PLATFORM_KEY}
    first_model: dict[str, int] = {}
    numbers: dict[Path, int] = {}
    by_model: dict[int, str] = {}
    for config in configs:
        n = numbers.setdefault(Path(os.path.normpath(config.path)), len(numbers) + 1)
        key = f"config-{n}.json"
        if key not in data:
            data[key] = config.text
            paths[key] = _path_in_folder(n, config.path)
            first_model[key] = config.model
        by_model[config.model] = paths[key]
    if by_model:
        data[PLATFORM_KEY] = _with_config_paths(text, by_model)
    return Mount(data, paths, first_model)


def _path_in_folder(n: int, path: Path) -> str:
    """configs/N/NAME/config.json; NAME is a single path element (a volume item's path may
    not hold `..`), which it is for any config path but `DIR/../config.json`."""
    name = config_key(path)
    return f"configs/{n}/{'_' if name in ('', '.', '..') else name}/config.json"


def _with_config_paths(text: str, by_model: dict[int, str]) -> str:
    """The text with each model's `architecture.config` value replaced: only those characters
    change, unless a value spans lines (then the document is written again)."""
    root = YAML(typ="rt").load(text)
    models = root["spec"]["models"]
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []
    for i, path in by_model.items():
        ref = models[i]["architecture"]
        line, col = ref.lc.value("config")
        old = SCALAR.match(lines[line], col)
        if old is None or not _reads_as(old.group(), ref["config"]):
            return _dumped(root, by_model)
        scalar = path if PLAIN.match(path) else json.dumps(path, ensure_ascii=False)
        edits.append((line, col, old.end(), scalar))
    for line, start, end, scalar in sorted(edits, reverse=True):  # later edits first
        lines[line] = lines[line][:start] + scalar + lines[line][end:]
    return "".join(lines)


def _reads_as(token: str, value: str) -> bool:
    """The one-line scalar `token` is the whole of `value` (not the first line of a longer
    plain scalar, nor the indicator of a block scalar)."""
    try:
        return YAML(typ="safe", pure=True).load(token) == value
    except YAMLError:
        return False


def _dumped(root: Any, by_model: dict[int, str]) -> str:
    for i, path in by_model.items():
        root["spec"]["models"][i]["architecture"]["config"] = path
    out = io.StringIO()
    YAML(typ="rt").dump(root, out)
    return out.getvalue()
