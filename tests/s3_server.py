"""A real S3-compatible server on loopback for tests: moto's server with IAM authentication on.

With authentication on, moto checks each request's AWS Signature Version 4 with botocore's
signer (an implementation independent of xpool's) against the IAM access keys it holds, and
answers 403 SignatureDoesNotMatch for a wrong secret. (s3rver 3.x accepts any Signature
Version 4 request whose access key id it knows, so it cannot catch a wrong secret.)

One moto bug is worked around: it rebuilds the query string it verifies from werkzeug's
decoded URL, so `prefix=a%2Fb%2F` (the canonical form AWS and MinIO verify, and botocore
itself signs) is checked as `prefix=a/b/` and refused (getmoto/moto#5948). The server runs
under a few lines that hand moto the raw query string instead; nothing else changes. Its paths
have a similar flaw for `+` and `=` (kept escaped, then escaped again), so test keys avoid them.

moto runs from its own Python (`moto_server` outside the project's virtualenv); tests skip
when it is not installed. Setup happens while moto still allows unauthenticated requests: an
IAM user with an access key and an inline policy allowing s3:*, the bucket; then
`/moto-api/reset-auth` switches authentication on for every later request.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import httpx

from xpool.adapters.s3 import S3Config, object_url, sign
from xpool.local.runtime import free_port

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'


RAW_QUERY_SERVER = """
import sys
from moto.core.responses import BaseResponse
from moto.server import main

setup_class = BaseResponse.setup_class


def raw_query_setup_class(self, request, full_url, headers, *args, **kwargs):
    raw = getattr(request, "environ", {}).get("QUERY_STRING")
    if raw:
        full_url = full_url.split("?", 1)[0] + "?" + raw
    return setup_class(self, request, full_url, headers, *args, **kwargs)


BaseResponse.setup_class = raw_query_setup_class
main(sys.argv[1:])
"""


def moto_python() -> str | None:
    """The Python interpreter `moto_server` runs with (read from its #! line), or None."""
    candidates = [
        shutil.which("moto_server"),
        *Path.home().glob(".pyenv/versions/*/bin/moto_server"),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        first = Path(candidate).read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
        if first.startswith("#!") and "python" in first:
            return first[2:].strip().split()[0]
    return None


class S3Server:
    """One moto_server process; `env()` is what a client needs to reach it."""

    def __init__(self, python: str, log: Path, bucket: str = "models") -> None:
        self.python = python
        self.log = log
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.access_key = ""
        self.secret_key = ""

    def start(self) -> S3Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.python, "-c", RAW_QUERY_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._wait_ready()
        self._setup()
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"moto_server did not answer within 30 s: {self.log.read_text()}")

    def config(self, secret: str | None = None) -> S3Config:
        return S3Config(
            endpoint=self.endpoint,
            region="us-east-1",
            access_key=self.access_key or "AKIAXPOOLSETUP000000",
            secret_key=secret or self.secret_key or "setup",
        )

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
        )
        env.update(overrides)
        return env

    def _iam(self, **params: str) -> ET.Element:
        """One IAM call (form POST); the signature only routes it (no auth yet)."""
        body = urlencode({**params, "Version": "2010-05-08"}).encode()
        url = self.endpoint + "/"
        headers = sign(
            self.config(),
            "POST",
            url,
            payload_sha256=hashlib.sha256(body).hexdigest(),
            service="iam",
        )
        headers["content-type"] = "application/x-www-form-urlencoded"
        r = httpx.post(url, content=body, headers=headers, timeout=10)
        r.raise_for_status()
        return ET.fromstring(r.content)

    def _setup(self) -> None:
        self._iam(Action="CreateUser", UserName="xpool-test")
        answer = self._iam(Action="CreateAccessKey", UserName="xpool-test")
        found = {e.tag.rsplit("}", 1)[-1]: e.text or "" for e in answer.iter()}
        self.access_key, self.secret_key = found["AccessKeyId"], found["SecretAccessKey"]
        self._iam(
            Action="PutUserPolicy",
            UserName="xpool-test",
            PolicyName="s3-all",
            PolicyDocument=POLICY,
        )
        self.request("PUT", self.bucket, "", b"").raise_for_status()
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=b"0", timeout=10)

    def request(
        self, method: str, bucket: str, key: str, data: bytes, secret: str | None = None
    ) -> httpx.Response:
        """One signed S3 request, e.g. to upload an object."""
        config = self.config(secret)
        url = object_url(self.endpoint, bucket, key)
        headers = sign(config, method, url, payload_sha256=hashlib.sha256(data).hexdigest())
        return httpx.request(method, url, content=data, headers=headers, timeout=30)

    def put(self, key: str, data: bytes) -> None:
        self.request("PUT", self.bucket, key, data).raise_for_status()
