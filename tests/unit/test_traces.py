"""Request traces: excerpts of the real Azure and ServeGen files parse, arrivals follow the rows.

The excerpts are committed under tests/data/traces (see its README.md for their sources, licences
and how they were cut); the figures asserted on them were worked out from the files with awk.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from xpool.errors import InputError
from xpool.sim.requests import Request, rename, speedup, window
from xpool.sim.servegen import WINDOW_S, client_windows, servegen_rates, servegen_requests
from xpool.sim.servegen_counts import servegen_counts
from xpool.sim.tokens import EmpiricalTokens, LognormalTokens
from xpool.sim.traces import azure_requests, generic_lines, generic_requests

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "tests" / "data" / "traces"
AZURE = TRACES / "azure-llm-2023"
M_LARGE = TRACES / "servegen-language" / "m-large"
DAY = 86_400.0


def azure(name: str) -> list[Request]:
    with (AZURE / f"AzureLLMInferenceTrace_{name}.csv").open(encoding="utf-8") as f:
        return list(azure_requests(f, name, f.name))


@contextlib.contextmanager
def opened(paths: list[Path]) -> Iterator[dict[str, object]]:
    """Client name (the file name) -> open file, as the CLI will pass them."""
    with contextlib.ExitStack() as stack:
        yield {p.name: stack.enter_context(p.open(encoding="utf-8")) for p in paths}


def tokens() -> LognormalTokens:
    return LognormalTokens(1000, 200, seed=0)


def synthetic(rows: list[str]) -> list[Request]:
    return list(servegen_requests({"c": rows}, "m", seed=7, tokens=tokens()))


# --- Azure LLM inference trace 2023 ---------------------------------------------------------


def test_azure_conv_parses_every_row_from_zero_in_time_order():
    reqs = azure("conv")
    assert len(reqs) == 1_000  # the excerpt: the first 1,000 requests
    assert reqs[0] == Request(0.0, "conv", 374, 44)
    assert reqs[-1] == Request(reqs[-1].t, "conv", 309, 18)
    assert all(a.t <= b.t for a, b in pairwise(reqs))
    # 18:15:46.6805900 -> 18:19:22.7079830, the 100 ns digit dropped: 3 min 36.027393 s.
    assert reqs[-1].t == pytest.approx(216.027393, abs=1e-6)


def test_azure_code_parses_every_row():
    reqs = azure("code")
    assert len(reqs) == 500  # the excerpt: the first 500 requests
    assert reqs[0] == Request(0.0, "code", 4808, 10)
    assert reqs[-1] == Request(reqs[-1].t, "code", 866, 14)
    # 18:17:03.9799600 -> 18:20:56.7810470: 3 min 52.801087 s.
    assert reqs[-1].t == pytest.approx(232.801087, abs=1e-6)


HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD = "2023-11-16 18:15:46.6805900,374,44\n"


@pytest.mark.parametrize(
    ("rows", "line", "words"),
    [
        ([GOOD, "2023-11-16 18:15:47.0000000,abc,5\n"], 3, "ContextTokens"),
        ([GOOD, "2023-11-16 18:15:47.0000000,12,-5\n"], 3, "GeneratedTokens"),
        ([GOOD, GOOD, "2023-11-16 18:15:47.0000000,12\n"], 4, "expected 3 fields"),
        ([GOOD, "16/11/2023 18:15:47,12,5\n"], 3, "TIMESTAMP"),
        ([GOOD, "2023-11-16 18:15:47+01:00,12,5\n"], 3, "TIMESTAMP"),
        ([GOOD, "2023-11-16 18:15:45.0000000,12,5\n"], 3, "sort the trace"),
    ],
)
def test_azure_malformed_row_names_file_and_line(tmp_path, rows, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    with path.open(encoding="utf-8") as f, pytest.raises(InputError) as err:
        list(azure_requests(f, "m", str(path)))
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


def test_azure_without_its_header_is_refused():
    with pytest.raises(InputError, match=r"t\.csv:1: expected the header"):
        list(azure_requests(["timestamp,model\n", GOOD], "m", "t.csv"))


# --- generic CSV / JSONL ---------------------------------------------------------------------

REQS = [
    Request(0.0, "qwen", 10, 2),
    Request(0.25, 'odd, "quoted" name', 7, 1),
    Request(0.25, "qwen", 0, 0),
    Request(1e-05 + 3600.0, "glm", 5000, 700),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_generic_round_trip(tmp_path, fmt):
    path = tmp_path / f"trace.{fmt}"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.writelines(generic_lines(REQS, fmt))
    with path.open(encoding="utf-8", newline="") as f:
        assert list(generic_requests(f, str(path), fmt)) == REQS


def test_generic_accepts_camel_case_extra_fields_and_any_time_origin():
    csv_lines = [
        "timestamp,model,inputTokens,outputTokens,user\n",
        "1700000000.5,a,3,4,x\n",
        "1700000002.0,b,5,6,y\n",
    ]
    jsonl_lines = [
        '{"timestamp": 1700000000.5, "model": "a", "inputTokens": 3, "outputTokens": 4.0}\n',
        "\n",
        '{"timestamp": 1700000002, "model": "b", "inputTokens": 5, "outputTokens": 6}\n',
    ]
    want = [Request(0.0, "a", 3, 4), Request(1.5, "b", 5, 6)]
    assert list(generic_requests(csv_lines, "t.csv", "csv")) == want
    assert list(generic_requests(jsonl_lines, "t.jsonl", "jsonl")) == want


@pytest.mark.parametrize(
    ("fmt", "lines", "where", "words"),
    [
        (
            "csv",
            ["timestamp,model,input_tokens,output_tokens\n", "2,a,1,1\n", "1,a,1,1\n"],
            3,
            "sort",
        ),
        (
            "jsonl",
            ['{"timestamp": 2, "model": "a", "input_tokens": 1, "output_tokens": 1}\n'] * 2
            + ['{"timestamp": 1.5, "model": "a", "input_tokens": 1, "output_tokens": 1}\n'],
            3,
            "sort",
        ),
        ("csv", ["timestamp,model,input_tokens\n", "1,a,1\n"], 1, "output_tokens or outputTokens"),
        ("csv", ["timestamp,model,input_tokens,output_tokens\n", "1,a,1.5,1\n"], 2, "input_tokens"),
        ("csv", ["timestamp,model,input_tokens,output_tokens\n", "now,a,1,1\n"], 2, "timestamp"),
        ("csv", ["timestamp,model,input_tokens,output_tokens\n", "1,,1,1\n"], 2, "model"),
        ("csv", ["timestamp,model,input_tokens,output_tokens\n", "1,a,1\n"], 2, "expected 4"),
        ("jsonl", ["{}\n", "[1]\n"], 1, "timestamp"),
        (
            "jsonl",
            ['{"timestamp": 1, "model": "a", "input_tokens": 1, "output_tokens": 1}\n', "{oops\n"],
            2,
            "not valid JSON",
        ),
        (
            "jsonl",
            ['{"timestamp": true, "model": "a", "input_tokens": 1, "output_tokens": 1}\n'],
            1,
            "timestamp",
        ),
    ],
)
def test_generic_bad_line_names_file_and_line(fmt, lines, where, words):
    with pytest.raises(InputError) as err:
        list(generic_requests(lines, "mine", fmt))
    assert f"mine:{where}:" in str(err.value)
    assert words in str(err.value)


def test_generic_unknown_format_is_refused_at_once():
    with pytest.raises(InputError, match="use csv or jsonl"):
        generic_requests([], "t.tsv", "tsv")  # type: ignore[arg-type]


# --- ServeGen --------------------------------------------------------------------------------


def m_large_clients() -> list[Path]:
    """The excerpt's m-large clients: day 1 of ten clients with 1 to 20,000 requests that day."""
    return sorted(M_LARGE.glob("chunk-*-trace.csv"))


def test_servegen_day_has_exactly_the_recorded_requests_per_window():
    paths = m_large_clients()
    assert len(paths) == 10
    with opened(paths) as clients:
        rates = dict(servegen_rates(clients, end=DAY))
    with opened(paths) as clients:
        reqs = list(servegen_requests(clients, "m-large", seed=1, tokens=tokens(), end=DAY))
    assert len(rates) == 144
    expected = {w: round(rate * WINDOW_S) for w, rate in rates.items() if rate > 0}
    assert len(expected) == 101  # windows with traffic in at least one client
    # The published rates are whole counts per window (x / 600), and each client's window
    # holds round(rate x 600) arrivals whatever the seed: counts match exactly, not
    # statistically; the randomness is only where in the window they fall.
    got = Counter(math.floor(r.t / WINDOW_S) * WINDOW_S for r in reqs)
    assert got == expected
    assert len(reqs) == pytest.approx(sum(rate * WINDOW_S for rate in rates.values()))
    assert len(reqs) == 71_679  # the sum of rate x 600 over the excerpt's rows
    assert all(a.t <= b.t for a, b in pairwise(reqs))
    assert {r.model for r in reqs} == {"m-large"}


def test_servegen_is_deterministic_per_seed_and_span():
    paths = m_large_clients()

    def run(seed: int, start: float = 0.0, end: float = 7200.0) -> list[float]:
        with opened(paths) as clients:
            return [
                r.t
                for r in servegen_requests(
                    clients, "m", seed=seed, tokens=tokens(), start=start, end=end
                )
            ]

    first = run(3)
    assert len(first) == 3_409  # the rows of the first two hours: whole counts per window
    assert run(3) == first
    assert run(4) != first
    # A span holds exactly the arrivals the longer run has there, cut windows included.
    assert run(3, start=1000.0, end=5000.0) == [t for t in first if 1000.0 <= t < 5000.0]


def test_servegen_arrivals_only_in_windows_with_traffic():
    a = ["0,1.0,1.0,Gamma,1.0,1.0\n", "600,0,0,,0,0\n", "1200,0.5,2.2,Weibull,0.5,3.0\n"]
    b = ["600,2.0,0,,0,0\n", "1200,0.1,1.0,Gamma,1.0,1.0\n", "2400,0.2,1.0,Gamma,1.0,1.0\n"]
    reqs = list(servegen_requests({"a": a, "b": b}, "m", seed=1, tokens=tokens()))
    # An empty pattern means no traffic even with a rate (ServeGen's reader ignores the row).
    got = Counter(math.floor(r.t / WINDOW_S) for r in reqs)
    assert got == {0: 600, 2: 300 + 60, 4: 120}
    assert list(servegen_rates({"a": a, "b": b})) == [
        (0.0, 1.0),
        (600.0, 0.0),
        (1200.0, 0.6),
        (2400.0, 0.2),
    ]


@pytest.mark.parametrize(
    ("pattern", "shape", "cv"),
    [
        ("Gamma", 1 / 9, 3.0),  # Gamma CV = 1 / sqrt(shape)
        ("Weibull", 0.5, math.sqrt(5)),  # sqrt(G(1 + 2/k) / G(1 + 1/k)^2 - 1)
        ("Gamma", 1.0, 1.0),  # exponential: Poisson arrivals
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_servegen_interarrival_cv_matches_the_row(pattern, shape, cv, seed):
    rows = [f"{i * 600},5.0,{cv},{pattern},{shape},2.5\n" for i in range(20)]
    reqs = list(servegen_requests({"c": rows}, "m", seed=seed, tokens=tokens()))
    times = [r.t for r in reqs]
    assert len(times) == 20 * 3000  # mean gap = 1 / rate in every window
    gaps = [b - a for a, b in pairwise(times) if a // 600 == b // 600]
    # 60,000 gaps; over 20 seeds the measured CV stayed within 7 % of the row's.
    assert statistics.pstdev(gaps) / statistics.mean(gaps) == pytest.approx(cv, rel=0.15)


def test_servegen_tiny_shapes_and_fractional_rates_keep_their_counts():
    # Shape 0.001 underflows most gaps to 0.0 (some windows are single bursts); 1.5 requests
    # per window are rounded stochastically to 1 or 2, 600 expected over 400 windows: the
    # total is 400 + Binomial(400, 1/2), standard deviation 10, so 5 sigma is 50.
    rows = [f"{i * 600},{1.5 / 600},50,Gamma,0.001,1\n" for i in range(400)]
    reqs = synthetic(rows)
    per_window = Counter(math.floor(r.t / WINDOW_S) for r in reqs)
    assert set(per_window) == set(range(400))
    assert set(per_window.values()) == {1, 2}
    assert abs(len(reqs) - 600) <= 50
    assert all(a.t <= b.t for a, b in pairwise(reqs))


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("600,1.0,1.0,Gamma,1.0\n", "expected 6 fields"),
        ("600,fast,1.0,Gamma,1.0,1.0\n", "must be numbers"),
        ("600,1.0,1.0,Pareto,1.0,1.0\n", "unknown arrival pattern 'Pareto'"),
        ("600,1.0,1.0,Weibull,0,1.0\n", "positive, finite shape"),
        ("300,1.0,1.0,Gamma,1.0,1.0\n", "overlaps the one before"),
    ],
)
def test_servegen_bad_row_names_client_and_line(row, words):
    with pytest.raises(InputError) as err:
        synthetic(["0,1.0,1.0,Gamma,1.0,1.0\n", row])
    assert "c:2:" in str(err.value)
    assert words in str(err.value)


# --- tokens and stream helpers ---------------------------------------------------------------


def test_empirical_tokens_resample_observed_pairs_deterministically():
    conv = azure("conv")
    observed = {(r.input_tokens, r.output_tokens) for r in conv}
    draws = [EmpiricalTokens.from_requests(conv, seed=5).sample() for _ in range(2)]
    sampler = EmpiricalTokens.from_requests(conv, seed=5)
    pairs = [sampler.sample() for _ in range(20_000)]
    assert draws[0] == draws[1] == pairs[0]
    assert set(pairs) <= observed
    # The excerpt's mean ContextTokens: 1,014,189 tokens over its 1,000 rows. The standard error
    # of the mean of 20,000 draws is 0.7 % of it (the rows' standard deviation is 992).
    assert statistics.mean(r.input_tokens for r in conv) == 1014.189
    assert statistics.mean(p[0] for p in pairs) == pytest.approx(1014.189, rel=0.05)
    with pytest.raises(InputError, match="non-empty trace"):
        EmpiricalTokens.from_requests([], seed=1)


def test_lognormal_tokens_have_the_asked_means():
    sampler = LognormalTokens(1000, 200, seed=9)
    pairs = [sampler.sample() for _ in range(50_000)]
    again = LognormalTokens(1000, 200, seed=9)
    assert [again.sample() for _ in range(100)] == pairs[:100]
    # Standard error of the mean: 1000 x sqrt(e^(0.99^2) - 1) / sqrt(50,000) = 0.55 %.
    assert statistics.mean(p[0] for p in pairs) == pytest.approx(1000, rel=0.03)
    assert statistics.mean(p[1] for p in pairs) == pytest.approx(200, rel=0.03)
    assert min(min(p) for p in pairs) >= 1
    with pytest.raises(InputError, match="mean_out"):
        LognormalTokens(1000, 0, seed=1)


def test_window_speedup_rename():
    reqs = [Request(float(t), "a" if t % 2 else "b", t, 1) for t in range(10)]
    assert [r.t for r in window(iter(reqs), 2.0, 5.0)] == [2.0, 3.0, 4.0]
    assert [r.t for r in window(reqs, 8.0)] == [8.0, 9.0]
    fast = list(speedup(reqs, 4.0))
    assert [r.t for r in fast] == [t / 4 for t in range(10)]
    assert [r.input_tokens for r in fast] == list(range(10))
    assert [r.model for r in rename(reqs[:3], {"a": "qwen"})] == ["b", "qwen", "b"]
    with pytest.raises(InputError, match="speedup factor 0"):
        speedup(reqs, 0)


def test_window_stops_reading_at_its_end():
    def endless() -> Iterator[Request]:
        t = 0.0
        while True:
            yield Request(t, "m", 1, 1)
            t += 1.0

    assert len(list(window(endless(), 10.0, 20.0))) == 10


@pytest.mark.parametrize(
    ("pattern", "shape"),
    [("Gamma", 1 / 9), ("Weibull", 0.5), ("Gamma", 1.0), ("Weibull", 0.25), ("Gamma", 0.02)],
)
@pytest.mark.parametrize("rate", [5.0, 0.2])
def test_servegen_counts_are_the_generated_arrivals_counted(pattern, shape, rate):
    """Fluid mode's counts per step hold each window's arrivals (as many as the requests
    `servegen_requests` generates) with the same burstiness over 1 s and over 30 s,
    heavy-tailed gaps included (Weibull 0.25: c2 = 251; Gamma 0.02: c2 = 50)."""
    rows = [f"{i * 600},{rate},1,{pattern},{shape},2.5\n" for i in range(60)]
    windows = list(client_windows(rows, "c"))
    counts = np.zeros(60 * 600)
    placed = {w.start: w.start for w in windows}
    servegen_counts([windows], placed, counts, step=1.0, speedup=1.0, scale=1.0, seed=3)
    reqs = servegen_requests({"c": rows}, "m", seed=1, tokens=tokens())
    seconds = Counter(int(r.t) for r in reqs)
    drawn = [seconds.get(k, 0) for k in range(60 * 600)]
    per_window = [counts[i * 600 : (i + 1) * 600].sum() for i in range(60)]
    assert per_window == pytest.approx(
        [sum(drawn[i * 600 : (i + 1) * 600]) for i in range(60)], abs=1
    )
    for span in (1, 30):
        ours = counts.reshape(-1, span).sum(axis=1)
        theirs = np.array(drawn).reshape(-1, span).sum(axis=1)
        assert ours.mean() == pytest.approx(theirs.mean(), rel=0.01)
        assert ours.var() == pytest.approx(theirs.var(), rel=0.35)


def test_servegen_counts_place_shifted_and_sped_up_windows():
    """A window placed at 100 s and replayed 2x faster puts its 600 arrivals in 100-400 s."""
    rows = ["0,1.0,1,Gamma,1.0,1.0\n"]
    counts = np.zeros(1000)
    windows = list(client_windows(rows, "c"))
    servegen_counts([windows], {0.0: 100.0}, counts, step=1.0, speedup=2.0, scale=1.0, seed=0)
    assert counts.sum() == 600
    assert counts[:100].sum() == 0 and counts[400:].sum() == 0
