"""Load a platform file: YAML with positions -> pydantic -> cross-field checks.

Every problem is collected and raised together as one `InputError`, each line
`FILE:LINE:COL: field.path: what is wrong and what to do`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from xpool.catalog.architectures import Architecture, ConfigJsonError, architectures
from xpool.catalog.hf_config import from_hf_config
from xpool.config.checks import cross_field_problems
from xpool.config.files import (
    CONFIG_JSON_LIMIT,
    PLATFORM_FILE_LIMIT,
    FileRefused,
    read_regular_file,
)
from xpool.config.models import ArchitectureConfig, Model, Platform
from xpool.config.positions import PathElem, SourceMap, format_path
from xpool.config.text_checks import (
    TextProblem,
    check_number_lengths,
    check_yaml_characters,
    check_yaml_directives,
    decode_utf8,
    nesting_problem,
)
from xpool.errors import InputError, Problem, redact_credentials
from xpool.fast_yaml import fast_load


@dataclass(frozen=True)
class ConfigFile:
    """A config.json the platform file names, as read: commands that load the platform in
    the cluster need its text there too (config/mounted.py)."""

    model: int  # index in spec.models
    path: Path  # resolved against the platform file's folder
    text: str


@dataclass(frozen=True)
class LoadedPlatform:
    """A valid platform file with its architectures resolved and its source map kept."""

    platform: Platform
    architectures: dict[str, Architecture]  # model name -> architecture
    source: SourceMap
    path: Path
    config_files: tuple[ConfigFile, ...] = ()  # in model order

    def problem(self, path: tuple[PathElem, ...], message: str) -> Problem:
        return Problem(self.source.locate(path), format_path(path), message)


def read_text(path: Path) -> str:
    """The file's text, refused (located) when a parser could not read it without a traceback."""
    try:
        data = read_regular_file(path, PLATFORM_FILE_LIMIT)
    except FileNotFoundError:
        raise InputError([Problem(str(path), "", "no such file; check the path")]) from None
    except FileRefused as exc:
        raise InputError([Problem(str(path), "", str(exc))]) from None
    except OSError as exc:
        raise InputError([Problem(str(path), "", f"cannot read: {exc}")]) from None
    try:
        text = decode_utf8(data)
        check_yaml_characters(text)
        check_number_lengths(text)
        check_yaml_directives(text)
    except TextProblem as exc:
        raise _located(str(path), exc) from None
    return text


def _located(filename: str, problem: TextProblem) -> InputError:
    return InputError([Problem(f"{filename}:{problem.line}:{problem.col}", "", problem.message)])


def parse_with_positions(filename: str, text: str) -> Any:
    """Parse YAML keeping line/column marks; syntax errors become one located line."""
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        raise InputError([_yaml_problem(filename, exc)]) from None
    except YAMLError as exc:
        raise InputError([Problem(filename, "", f"YAML error: {exc}")]) from None
    except RecursionError:
        raise _located(filename, nesting_problem(text)) from None
    if not isinstance(root, dict):
        lc = getattr(root, "lc", None)
        line, col = (lc.line + 1, lc.col + 1) if lc is not None else (1, 1)
        raise InputError(
            [
                Problem(
                    f"{filename}:{line}:{col}",
                    "",
                    "expected a mapping with apiVersion, kind, metadata and spec "
                    f"(got {'an empty file' if root is None else type(root).__name__})",
                )
            ]
        )
    return root


def _yaml_problem(filename: str, exc: MarkedYAMLError) -> Problem:
    """Point at the opening bracket of an unclosed flow collection, else where parsing broke."""
    flow = bool(exc.context and "flow" in exc.context and exc.context_mark)
    mark = exc.context_mark if flow else (exc.problem_mark or exc.context_mark)
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    what = exc.problem or exc.context or "invalid YAML"
    if flow:
        what += f" ({exc.context} opened here; close it)"
    return Problem(where, "", f"YAML syntax error: {what}")


class _RetryWithPositions(Exception):
    """The fast parse found a problem: redo everything on the parse that can locate it."""


def load_platform(path: str | Path) -> LoadedPlatform:
    """Load and check a platform file; InputError lists every problem, each located.

    A valid file is parsed once by libyaml (fast_yaml). Only a file with problems is parsed
    again by ruamel.yaml, whose marks give each problem its line and column, and whose
    verdict is the one reported.
    """
    path = Path(path)
    source = SourceMap(str(path), read_text(path), parse_with_positions)
    try:
        data = fast_load(source.text)
    except Exception:  # any failure: the careful parse reports it properly
        data = None
    if isinstance(data, dict):
        try:
            return _load(path, data, source, careful=False)
        except _RetryWithPositions:
            pass
    return _load(path, source.root, source, careful=True)


def _load(path: Path, data: dict, source: SourceMap, *, careful: bool) -> LoadedPlatform:
    try:
        platform = Platform.model_validate(data)
    except ValidationError as exc:
        if not careful:
            raise _RetryWithPositions from None
        raise InputError(_schema_problems(exc, source)) from None
    problems = [
        Problem(source.locate(p), format_path(p), msg) for p, msg in cross_field_problems(platform)
    ]
    archs, configs, arch_problems = _resolve_architectures(platform, path.parent, source)
    problems += arch_problems
    if problems:
        if not careful:
            raise _RetryWithPositions
        raise InputError(problems)
    return LoadedPlatform(platform, archs, source, path, configs)


def _resolve_architectures(
    platform: Platform, base: Path, source: SourceMap
) -> tuple[dict[str, Architecture], tuple[ConfigFile, ...], list[Problem]]:
    by_index: dict[int, Architecture] = {}
    configs: list[ConfigFile] = []
    found: list[tuple[tuple[PathElem, ...], str]] = []
    for i, model in enumerate(platform.spec.models):
        where: tuple[PathElem, ...] = ("spec", "models", i, "architecture")
        ref = model.architecture
        try:
            if isinstance(ref, ArchitectureConfig):
                where = (*where, "config")
                by_index[i], text = _read_hf_config(base / ref.config)
                configs.append(ConfigFile(i, base / ref.config, text))
            else:
                by_index[i] = _catalog_architecture(ref)
        except (OSError, ValueError) as exc:
            found.append((where, str(exc)))
    for i, arch in by_index.items():
        found += _architecture_problems(platform.spec.models[i], i, arch)
    problems = [Problem(source.locate(path), format_path(path), msg) for path, msg in found]
    resolved = {platform.spec.models[i].name: arch for i, arch in by_index.items()}
    return resolved, tuple(configs), problems


def _catalog_architecture(ref: str) -> Architecture:
    """A catalog key's architecture; ValueError naming the keys (and the config form) if not."""
    catalog = architectures()
    if ref not in catalog:
        hint = difflib.get_close_matches(ref, catalog, n=1)
        did = f"did you mean '{hint[0]}'? " if hint else ""
        raise ValueError(
            f"unknown architecture '{ref}'; {did}use a catalog key "
            f"({', '.join(sorted(catalog))}) or {{config: path/to/config.json}}"
        )
    return catalog[ref]


def _architecture_problems(
    model: Model, i: int, arch: Architecture
) -> list[tuple[tuple[PathElem, ...], str]]:
    """The model's type matches its architecture, and each version's weightPrecision matches
    the checkpoint's own quantization_config (a 4-bit AWQ checkpoint is not BF16)."""
    found: list[tuple[tuple[PathElem, ...], str]] = []
    if arch.model_type != model.type:
        found.append(
            (
                ("spec", "models", i, "type"),
                f"type is '{model.type}' but architecture '{arch.key}' is an "
                f"{arch.model_type} model; set type: {arch.model_type}",
            )
        )
    quant = arch.quantization
    if quant is None:
        return found
    stored = f"its config.json stores {quant.describe()} weights (quantization_config)"
    for j, version in enumerate(model.versions):
        where: tuple[PathElem, ...] = ("spec", "models", i, "versions", j)
        if "weight_precision" not in version.model_fields_set:
            found.append((where, f"{stored}; set weightPrecision: {quant.weight_precision}"))
        elif version.weight_precision != quant.weight_precision:
            found.append(
                (
                    (*where, "weightPrecision"),
                    f"weightPrecision {version.weight_precision} contradicts the checkpoint: "
                    f"{stored}; set weightPrecision: {quant.weight_precision}, or give the "
                    "config.json of a checkpoint in that precision",
                )
            )
    return found


def _read_hf_config(path: Path) -> tuple[Architecture, str]:
    """The architecture a config.json describes, and the file's text."""
    try:
        text = decode_utf8(read_regular_file(path, CONFIG_JSON_LIMIT))
        check_number_lengths(text)
        config = json.loads(text)
    except TextProblem as exc:
        raise ValueError(f"{path}:{exc}") from None
    except FileRefused as exc:
        raise ValueError(f"{path} {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}:{nesting_problem(text)}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory; give the path of its config.json") from None
    except FileNotFoundError:
        raise ValueError(
            f"config file {path} does not exist; the path is relative to the platform file"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object (a Hugging Face config.json)")
    try:
        return from_hf_config(config, key=config_key(path), source=str(path)), text
    except ConfigJsonError as exc:
        raise ValueError(f"{path}{_key_line(text, exc.key)}: {exc}") from None


def config_key(path: Path) -> str:
    """A name for the architecture: the folder of a `config.json` (as models are stored),
    else the file's own name, so that configs side by side in one folder stay apart."""
    return path.parent.name if path.name == "config.json" and path.parent.name else path.stem


def _key_line(text: str, key: str | None) -> str:
    """':LINE' of the first occurrence of `"key"` in the JSON text, or '' if absent."""
    at = text.find(f'"{key}"') if key else -1
    return f":{text.count(chr(10), 0, at) + 1}" if at >= 0 else ""


def _schema_problems(exc: ValidationError, source: SourceMap) -> list[Problem]:
    found: dict[tuple[PathElem, ...], Problem] = {}
    for error in exc.errors(include_url=False):
        path = _data_path(error, source.root)
        if path not in found:  # one line per field: a union reports each alternative
            found[path] = Problem(source.locate(path), format_path(path), _message(error, path))
    # A union also fails on the alternative the user did not mean, one level up
    # ("input should be a number" beside the real error inside the mapping): drop those.
    return [
        problem
        for path, problem in found.items()
        if not any(len(other) > len(path) and other[: len(path)] == path for other in found)
    ]


def _data_path(error: dict[str, Any], root: Any) -> tuple[PathElem, ...]:
    """Drop pydantic's union tags (e.g. 'str', 'function-after[...]') from an error location."""
    loc = list(error["loc"])
    path: list[PathElem] = []
    node = root
    for i, elem in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, list) and isinstance(elem, int):
            path.append(elem)
            node = node[elem] if elem < len(node) else None
        elif isinstance(node, dict) and elem in node:
            path.append(elem)
            node = node[elem]
        elif last and error["type"] in {"missing", "extra_forbidden"}:
            path.append(elem)
        # anything else is a union member's tag, not a place in the file
    return tuple(path)


def _message(error: dict[str, Any], path: tuple[PathElem, ...]) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"required field '{path[-1]}' is missing; add it"
    if kind == "extra_forbidden":
        known = _known_fields(path[:-1])
        hint = difflib.get_close_matches(str(path[-1]), known, n=1)
        if hint:
            return f"unknown field '{path[-1]}'; did you mean '{hint[0]}'?"
        return f"unknown field '{path[-1]}' (known: {', '.join(known)})"
    value = error.get("input")
    shown = f" (got {_show(value)})" if not isinstance(value, dict | list) else ""
    text = error["msg"]
    if text.startswith("Value error, "):
        text = text.removeprefix("Value error, ")
    return f"{text[0].lower()}{text[1:]}{shown}"


def _show(value: Any) -> str:
    """The value as the error shows it: credentials hidden before it is cut to length (a cut
    URL would no longer be recognised as one)."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    text = redact_credentials(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_fields(path: tuple[PathElem, ...]) -> list[str]:
    """The camelCase field names of the model found at `path`."""
    model: Any = Platform
    for elem in path:
        if isinstance(elem, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == elem), None
        )
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None or get_args(annotation):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
