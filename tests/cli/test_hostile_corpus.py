"""Hostile and careless platform files through validate, plan, render and apply.

Every file in `hostile/` holds one odd input (YAML features, look-alike and invisible
characters, YAML 1.1 words, number forms, tags, template and shell text, paths, URLs with
credentials, names at their limits, durations, ...) and starts with header comments saying
what every command must do with it:

    # expect: refused             validate, plan, render and apply exit 2, stdout empty, every
                                  stderr line `error: FILE:LINE:COL: ...`; render --out writes
                                  nothing, apply sends the API server nothing
    # expect: refused-at-render   validate and plan (which do not render) exit 0; render,
                                  apply and `validate --rendered` exit 2 with nothing written
    # expect: accepted            all four exit 0; render --out writes the objects, apply puts
                                  them on the server with the platform ConfigMap holding the
                                  file byte for byte
    # expect-message: TEXT        on stderr of every refusing command (may repeat)
    # expect-rendered: TEXT       in a string of a rendered object, or in its compact JSON
                                  (the platform ConfigMap, a copy of the file, is left out)
    # expect-objects: 0           accepted, but nothing to render for Kubernetes
    # expect-defect: WHAT         a known defect: the case is xfail(strict) until it is fixed

Every command, whatever the file: never a traceback, an exit code of 0, 2 or 3 only, no
control character on stderr, and never the fake secret `hunter2` on stderr.

The commands run as separate processes forked from one that imported xpool once
(`cli_forkserver.py`): four commands on each of these files would otherwise spend minutes
importing. `test_forked_runs_match_real_ones` checks that a forked run prints and exits as
`python -m xpool.cli` does. One contract API server serves the whole module; each test leaves
it as it found it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.cli_forkserver import ForkServer
from tests.conftest import ROOT, run_xpool
from tests.contract.apiserver import RESOURCES, ContractApiServer

CORPUS = Path(__file__).parent / "hostile"
FILES = sorted(CORPUS.glob("*.yaml"), key=lambda f: int(f.name.partition("-")[0]))
HEADER = re.compile(r"^#\s*expect(?:-(message|rendered|objects|defect))?:\s?(.*)$")
OUTCOMES = ("refused", "refused-at-render", "accepted")
SECRET = "hunter2"
PLATFORM = "xpool-platform"  # the ConfigMap holding the platform file
EXIT_CODES = {0, 2, 3}
# C0 controls and DEL other than tab and newline: a terminal would act on them.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Short, bounded retries, as tests/kube uses: a refused file must not wait on the network.
ENV = {
    "XPOOL_KUBE_RETRY_ATTEMPTS": "2",
    "XPOOL_KUBE_RETRY_MAX_SECONDS": "5",
    "XPOOL_KUBE_RETRY_BASE_SECONDS": "0.05",
    "XPOOL_KUBE_TIMEOUT_SECONDS": "10",
    "NO_COLOR": "1",
}

Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


@dataclass(frozen=True)
class Expectation:
    outcome: str
    messages: tuple[str, ...]
    rendered: tuple[str, ...]
    objects: bool  # accepted: whether it renders Kubernetes objects
    defect: str | None


def expectation(file: Path) -> Expectation:
    """The `# expect...` lines of the file's leading comment block (after a BOM, if any)."""
    found: dict[str | None, list[str]] = {}
    text = file.read_bytes().decode("utf-8").removeprefix("\ufeff")
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = HEADER.match(line)
        if match is not None:
            found.setdefault(match.group(1), []).append(match.group(2).rstrip())
    outcome = found.get(None, [""])
    assert len(outcome) == 1 and outcome[0] in OUTCOMES, f"{file.name}: needs one '# expect:'"
    if outcome[0] != "accepted":
        assert found.get("message"), f"{file.name}: a refusal needs '# expect-message:'"
    return Expectation(
        outcome=outcome[0],
        messages=tuple(found.get("message", [])),
        rendered=tuple(found.get("rendered", [])),
        objects=found.get("objects", [""])[0] != "0",
        defect=(found.get("defect") or [None])[0],
    )


def case(file: Path) -> Any:
    """The file as a test parameter; a known defect keeps it visible as a strict xfail."""
    defect = expectation(file).defect
    marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
    return pytest.param(file, id=file.stem, marks=marks)


# -- the shared server and CLI ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ContractApiServer]:
    """One contract server for the module, with Volcano's namespace as on a real cluster."""
    api = ContractApiServer().start()
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "volcano-system"}})
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def kubeconfig(server: ContractApiServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    drop = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "XPOOL_DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(ENV)
    forks = ForkServer(ROOT, env, tmp_path_factory.mktemp("streams"))
    try:
        yield forks
    finally:
        forks.close()


def stored(api: ContractApiServer) -> dict[Key, Any]:
    """Every object the server holds, with its resource type."""
    return {
        (rt.api_version, rt.kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): rt
        for rt in RESOURCES
        for obj in api.objects(rt.api_version, rt.kind)
    }


@pytest.fixture
def cluster(server: ContractApiServer) -> Iterator[ContractApiServer]:
    """The shared server, checked to hold only its own objects, and put back so afterwards."""
    baseline = set(stored(server))
    server.clear_log()
    yield server
    for (api_version, kind, ns, name), rt in stored(server).items():
        # a Namespace's deletion takes its objects with it: skip those already gone
        live = server.get(api_version, kind, name, ns or None)
        if (api_version, kind, ns, name) not in baseline and live is not None:
            server.delete(rt, ns, name, b"", {})
    assert set(stored(server)) == baseline


# -- checks -------------------------------------------------------------------------------------


def report(result: subprocess.CompletedProcess[str]) -> str:
    command = " ".join(result.args[:2])
    return (
        f"{command}: exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def check_any(result: subprocess.CompletedProcess[str]) -> None:
    """What holds for every command on every file."""
    assert "Traceback" not in result.stderr, report(result)
    assert result.returncode in EXIT_CODES, report(result)
    assert SECRET not in result.stderr, report(result)
    assert not CONTROL.search(result.stderr), report(result)


def check_refused(
    result: subprocess.CompletedProcess[str], file: Path, expect: Expectation
) -> None:
    assert result.returncode == 2, report(result)
    assert result.stdout == "", report(result)
    located = re.compile(rf"^error: {re.escape(str(file))}:\d+:\d+: ")
    lines = result.stderr.splitlines()
    assert lines and all(located.match(line) for line in lines), report(result)
    for message in expect.messages:
        assert message in result.stderr, f"missing {message!r}\n{report(result)}"


def check_refused_at_render(result: subprocess.CompletedProcess[str], expect: Expectation) -> None:
    assert result.returncode == 2, report(result)
    assert result.stdout == "", report(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, report(result)
    for message in expect.messages:
        assert message in result.stderr, f"missing {message!r}\n{report(result)}"


def strings(value: Any) -> Iterator[str]:
    """Every key and string inside a parsed object: escapes resolved, as a consumer sees them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def check_applied(
    file: Path, out: Path, api: ContractApiServer, baseline: set[Key], expect: Expectation
) -> None:
    """The rendered objects hold what the header expects and are all on the server; the
    platform ConfigMap holds the file byte for byte, as rendered and as stored."""
    if not expect.objects:
        assert not out.exists() or not any(out.iterdir())
        assert set(stored(api)) == baseline
        return
    objects = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(out.iterdir())]
    assert objects, f"render --out wrote nothing into {out}"
    others = [o for o in objects if o["metadata"]["name"] != PLATFORM]
    text = "\n".join(
        [s for obj in others for s in strings(obj)]
        + [json.dumps(obj, ensure_ascii=False, separators=(",", ":")) for obj in others]
    )
    for wanted in expect.rendered:
        assert wanted in text, f"{wanted!r} is in no rendered object"
    for obj in objects:
        meta = obj["metadata"]
        live = api.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        assert live is not None, f"{obj['kind']} {meta['name']} was not applied"
    given = file.read_bytes().decode("utf-8")
    (platform,) = [o for o in objects if o["metadata"]["name"] == PLATFORM]
    assert platform["data"]["platform.yaml"] == given, "render changed the platform file"
    live = api.get("v1", "ConfigMap", PLATFORM, platform["metadata"]["namespace"])
    assert live["data"]["platform.yaml"] == given, "apply changed the platform file"


# -- the tests -------------------------------------------------------------------------------


def test_corpus_is_large_and_numbered() -> None:
    names = [f.name for f in FILES]
    assert len(names) >= 60, f"only {len(names)} hostile files in {CORPUS}"
    assert all(re.fullmatch(r"(0[1-9]|[1-9][0-9]+)-[a-z0-9.-]+\.yaml", n) for n in names), names
    assert [int(n.partition("-")[0]) for n in names] == list(range(1, len(names) + 1)), names


def test_corpus_shares_no_file_with_the_malformed_one() -> None:
    malformed = {p.read_bytes() for p in (CORPUS.parent / "malformed").glob("*.yaml")}
    assert not [f.name for f in FILES if f.read_bytes() in malformed]


@pytest.mark.parametrize("file", [case(f) for f in FILES])
def test_hostile_file(
    file: Path, cli: ForkServer, cluster: ContractApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    expect = expectation(file)
    baseline = set(stored(cluster))
    out = tmp_path / "rendered"
    validate = cli.run("validate", str(file))
    plan = cli.run("plan", str(file))
    render = cli.run("render", str(file), "--out", str(out))
    apply = cli.run("apply", str(file), "--kubeconfig", str(kubeconfig))
    for result in (validate, plan, render, apply):
        check_any(result)

    if expect.outcome == "accepted":
        for result in (validate, plan, render, apply):
            assert result.returncode == 0, report(result)
        check_applied(file, out, cluster, baseline, expect)
        return

    if expect.outcome == "refused":
        for result in (validate, plan, render, apply):
            check_refused(result, file, expect)
    else:
        assert validate.returncode == 0, report(validate)
        assert plan.returncode == 0, report(plan)
        rendered = cli.run("validate", "--rendered", str(file))
        check_any(rendered)
        for result in (render, apply, rendered):
            check_refused_at_render(result, expect)
    assert not out.exists(), f"render --out created {out} for a refused file"
    assert cluster.requests == [], "apply contacted the API server for a refused file"
    assert set(stored(cluster)) == baseline


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("anchors-share-a-context-block", "plan"),
        ("duplicate-key-in-a-flow-mapping", "validate"),
        ("yaml-1.0-directive", "validate"),
    ],
    ids=["accepted-plan", "refused-validate", "refused-before-parsing-validate"],
)
def test_forked_runs_match_real_ones(name: str, command: str, cli: ForkServer) -> None:
    """A forked run prints and exits exactly as `python -m xpool.cli` does (a file with a
    table, a refused one, and one refused before it is parsed)."""
    (file,) = [f for f in FILES if f.stem.partition("-")[2] == name]
    forked = cli.run(command, str(file))
    real = run_xpool(command, str(file))
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )
