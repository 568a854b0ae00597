"""The Dockerfile of the xpool image, read statically (no container engine is needed): its
Python and the xpool version it installs are pyproject.toml's, its base is pinned by tag and
digest, it runs as a non-root user, and the docs build the tag the renderer uses."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT
from xpool.config.models import Images

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile: comments dropped, continuations joined,
    `${ARG}` replaced by the ARG's default."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out: list[tuple[str, str]] = []
    args: dict[str, str] = {}
    for line in filter(None, (line.strip() for line in joined.splitlines())):
        keyword, _, rest = line.partition(" ")
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.strip())
        if keyword.upper() == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
        out.append((keyword.upper(), rest))
    return out


def of(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def python_minor() -> str:
    """'3.11' from requires-python '>=3.11', checked against ruff's target-version."""
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert match, PYPROJECT["project"]["requires-python"]
    major, minor = match.groups()
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    return f"{major}.{minor}"


def test_every_base_image_is_pinned_by_tag_and_digest():
    stages = of("FROM")
    assert len(stages) >= 2  # the wheel is built in a stage of its own
    for stage in stages:
        image = stage.split()[0]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image
        assert ":latest" not in image


def test_the_image_runs_the_python_pyproject_names():
    images = {stage.split()[0] for stage in of("FROM")}
    assert len(images) == 1  # the wheel is built with the Python it runs on
    (image,) = images
    tag = image.split("@")[0].split(":")[1]
    assert re.fullmatch(rf"{re.escape(python_minor())}\.\d+-slim(-\w+)?", tag), tag
    assert image.startswith("python:")


def test_the_image_installs_this_version_from_its_wheel_without_the_local_extra():
    runs = " ".join(of("RUN"))
    assert "pip wheel --no-cache-dir --no-deps" in runs
    installs = [r for r in of("RUN") if "pip install" in r]
    assert len(installs) == 1
    assert re.search(
        rf"pip install --no-cache-dir \S*/xpool-{re.escape(VERSION)}-py3-none-any\.whl$",
        installs[0],
    )
    assert "[" not in installs[0]  # no extras: neither `local` (Xinference, torch) nor `dev`


def test_the_image_runs_xpool_as_a_numeric_non_root_user():
    (user,) = of("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, user  # numeric: runAsNonRoot can verify it
    assert gid.isdigit() and int(gid) > 0, user
    keywords = [kw for kw, _ in instructions()]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")
    assert of("ENTRYPOINT") == ['["xpool"]']


def test_the_rendered_default_image_is_the_one_the_docs_build():
    assert Images().xpool == f"xpool:{VERSION}"
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert f"docker build -t xpool:{VERSION} ." in operations
