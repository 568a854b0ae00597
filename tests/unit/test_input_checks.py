"""Single-value input rules: cron schedules as the API server parses them, credential
variable names, credentials in URLs hidden from messages, %YAML directives and ASCII digits."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from xpool.actions.flag_values import check_listen
from xpool.config.cron import check_cron
from xpool.config.durations import parse_duration
from xpool.config.env_names import RESERVED_NAMES, RESERVED_PREFIXES, not_reserved
from xpool.config.text_checks import TextProblem, check_yaml_directives
from xpool.errors import InputError, redact_credentials


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/5 * ? * ?",
        "0 3 1,15 * mon-fri",
        "5/15 * * JAN-dec *",
        "0 0 * * 0-6",
        "1,,2 * * * *",
        "@hourly",
        "@annually",
        "@every 1h30m",
        "@every 90s",
        "@every .5h",
    ],
)
def test_schedules_the_api_server_accepts(schedule: str) -> None:
    assert check_cron(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("@hourly ", "unknown descriptor '@hourly '"),
        (" @hourly", "a cron schedule has 5 fields"),
        ("@every 5 m", "unknown descriptor"),
        ("@every", "unknown descriptor"),
        ("CRON_TZ=Europe/Berlin 0 3 * * *", ".spec.timeZone"),
        ("TZ=UTC 0 3 * * *", "(TZ= or CRON_TZ=) is refused by Kubernetes"),
        ("0 3 L * *", "L, W and # (Quartz) are not supported"),
        ("0 3 15W * *", "L, W and # (Quartz) are not supported"),
        ("0 3 * * 5#3", "L, W and # (Quartz) are not supported"),
        ("0 3 * * 5L", "L, W and # (Quartz) are not supported"),
        ("0 3 * * 7", "with N in 0-6"),
        ("0 */0 * * *", "cron field hour '*/0'"),
        ("0 0 0 * *", "with N in 1-31"),
        ("\uff15 * * * *", "cron field minute"),
    ],
)
def test_schedules_the_api_server_refuses(schedule: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_cron(schedule)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "path",
        "LD_PRELOAD",
        "PYTHONPATH",
        "XPOOL_DEBUG",
        "XPOOL_KUBE_TIMEOUT_SECONDS",
        "KUBERNETES_SERVICE_HOST",
        "AWS_SECRET_ACCESS_KEY",
        "XINFERENCE_HOME",
        "http_proxy",
        "POD_NAME",
    ],
)
def test_reserved_variable_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="used by the container, its image or xpool itself"):
        not_reserved(name)


@pytest.mark.parametrize("name", ["XPOOL_GATEWAY_API_KEYS", "XPOOL_XINFERENCE_API_KEY", "KEYS"])
def test_own_variable_names_are_accepted(name: str) -> None:
    assert not_reserved(name) == name


def test_every_xpool_variable_the_code_names_is_reserved() -> None:
    """A variable xpool reads or sets later is refused as a credential's name too."""
    names = {
        found
        for path in (ROOT / "toolkit" / "xpool").rglob("*.py")
        for found in re.findall(r"\bXPOOL_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8"))
    }
    assert names
    unreserved = [
        n for n in names if n not in RESERVED_NAMES and not n.startswith(RESERVED_PREFIXES)
    ]
    # the examples' own names, suggested in messages and docs
    assert set(unreserved) <= {"XPOOL_GATEWAY_API_KEYS", "XPOOL_XINFERENCE_API_KEY"}, unreserved


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("s3://AKIA:hunter2@bucket/x", "s3://***@bucket/x"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Date=1&X-Amz-Signature=hunter2",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Date=1&X-Amz-Signature=***",
        ),
        ("'http://h/?sig=hunter2' carries", "'http://h/?sig=***' carries"),
        ("(got 'http://h/?Token=hun'ter2')", "(got 'http://h/?Token=***')"),
        ("http://h/?a=1;password=hunter2#x", "http://h/?a=1;password=***#x"),
    ],
)
def test_credentials_are_hidden_in_messages(text: str, shown: str) -> None:
    assert redact_credentials(text) == shown


@pytest.mark.parametrize(
    ("version", "refused"),
    [("1.0", True), ("1.3", True), ("2.0", True), ("1.1", False), ("1.2", False)],
)
def test_yaml_directives_other_than_1_1_and_1_2_are_located(version: str, refused: bool) -> None:
    text = f"# a comment\n%YAML {version}\n---\na: 1\n"
    if not refused:
        check_yaml_directives(text)
        return
    with pytest.raises(TextProblem) as info:
        check_yaml_directives(text)
    assert (info.value.line, info.value.col) == (2, 7)
    assert f"%YAML {version} is not a YAML version xpool reads" in info.value.message


@pytest.mark.parametrize("text", ["\uff13\uff10s", "1h\uff15m", "\u0665s"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_listen_flag_takes_ascii_digits_only() -> None:
    with pytest.raises(InputError, match="is not HOST:PORT"):
        check_listen("--listen", "0.0.0.0:\uff18\uff10\uff18\uff10")
