"""A small S3 client: list a prefix, stream an object to a file or a hash (model sources);
put, read and delete small objects (the Batch API's store, `adapters/object_store.py`).

httpx with AWS Signature Version 4 signed here, so the project needs no AWS SDK. Addressing is
path-style (`ENDPOINT/BUCKET/KEY`), which MinIO and most S3-compatible stores expect and AWS
still serves. Settings come from the environment as the AWS tools read them:
`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (default `https://s3.REGION.amazonaws.com`),
`AWS_REGION` or `AWS_DEFAULT_REGION` (default us-east-1), `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, and `AWS_CA_BUNDLE` for a private CA
(TLS is always verified). Secrets never appear in messages or reprs.

Failures a user can fix (refused credentials, a missing bucket or key) raise InputError;
connection errors and 5xx/429 answers are retried with backoff, then raise RemoteError.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import httpx
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from xpool.errors import InputError, RemoteError

CHUNK = 1 << 20  # 1 MiB: streaming and hashing granularity
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
CREDENTIAL_VARS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if used)"
# S3's answers for credentials it does not accept (AccessDenied: valid but not allowed).
REFUSED_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AccessDenied",
    }
)

T = TypeVar("T")


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Config:
        env = os.environ if env is None else env
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = (
            env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL")
            or f"https://s3.{region}.amazonaws.com"
        )
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"S3 endpoint {endpoint!r} (AWS_ENDPOINT_URL) is not an http(s) URL; "
                "set it like http://127.0.0.1:9000"
            )
        access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise InputError(
                f"s3:// sources need credentials: set {CREDENTIAL_VARS} "
                "(and AWS_ENDPOINT_URL for MinIO or another S3-compatible store)"
            )
        return cls(
            endpoint=endpoint.rstrip("/"),
            region=region,
            access_key=access,
            secret_key=secret,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            ca_bundle=env.get("AWS_CA_BUNDLE") or None,
        )


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str


def parse_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def object_url(
    endpoint: str, bucket: str, key: str = "", query: Mapping[str, str] | None = None
) -> str:
    """A path-style URL in the canonical form `sign` expects (encoded, query sorted)."""
    path = "/" + _quote(bucket)
    if key:
        path += "/" + "/".join(_quote(seg) for seg in key.split("/"))
    pairs = sorted((_quote(k), _quote(v)) for k, v in (query or {}).items())
    qs = "&".join(f"{k}={v}" for k, v in pairs)
    return endpoint + path + ("?" + qs if qs else "")


def sign(
    config: S3Config,
    method: str,
    url: str,
    *,
    payload_sha256: str = EMPTY_SHA256,
    now: dt.datetime | None = None,
    service: str = "s3",
) -> dict[str, str]:
    """The headers that sign one request with AWS Signature Version 4.

    `url` must already be in canonical form: path segments and query pairs percent-encoded
    with `_quote`, query pairs sorted (as `S3Client` builds them), so the bytes sent are the
    bytes signed.
    """
    parts = urlsplit(url)
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {
        "host": parts.netloc,
        "x-amz-content-sha256": payload_sha256,
        "x-amz-date": stamp,
    }
    if config.session_token:
        headers["x-amz-security-token"] = config.session_token
    names = sorted(headers)
    signed = ";".join(names)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            parts.query,
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            signed,
            payload_sha256,
        ]
    )
    scope = f"{day}/{config.region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + config.secret_key).encode(), day)
    for part in (config.region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={config.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return headers


class _Transient(Exception):
    """A retryable failure (connection error or 5xx/429), so tenacity can see it."""


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _error_code(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 XML error body, or ("", "")."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "", ""
    found = {_strip_ns(e.tag): (e.text or "") for e in root}
    return found.get("Code", ""), found.get("Message", "")


class S3Client:
    """Signed requests to one S3 endpoint with bounded retries."""

    def __init__(
        self,
        config: S3Config,
        *,
        attempts: int = 4,
        max_seconds: float = 30.0,
        timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.attempts = attempts
        self.max_seconds = max_seconds
        self._http = httpx.Client(timeout=timeout, verify=config.ca_bundle or True)

    @classmethod
    def from_env(cls) -> S3Client:
        return cls(S3Config.from_env())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> S3Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], T], what: str) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_seconds),
            wait=wait_exponential(multiplier=0.5, max=8.0) + wait_random(0, 0.5),
            reraise=True,
        )
        try:
            return retrying(call)
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", self.attempts)
            raise RemoteError(
                f"{what}: S3 endpoint {self.config.endpoint} still failed after "
                f"{attempts} attempts: {exc}"
            ) from None

    def _check(self, status: int, body: bytes, what: str) -> None:
        """Raise the xpool error for a non-2xx answer (`body`: its bytes, an S3 XML error)."""
        if status < 300:
            return
        code, message = _error_code(body)
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        if status in RETRYABLE_STATUS:
            raise _Transient(detail + (f": {message}" if message else ""))
        if status == 403 or code in REFUSED_CODES:
            raise InputError(
                f"{what}: S3 endpoint {self.config.endpoint} refused the credentials "
                f"({detail}); check {CREDENTIAL_VARS}"
            )
        if code == "NoSuchBucket":
            raise InputError(
                f"{what}: bucket does not exist at {self.config.endpoint} ({detail}); "
                "check the source's bucket name and AWS_ENDPOINT_URL"
            )
        if status == 404:
            raise InputError(f"{what}: not found at {self.config.endpoint} ({detail})")
        if code in ("AuthorizationHeaderMalformed", "PermanentRedirect"):
            raise InputError(
                f"{what}: S3 endpoint {self.config.endpoint} expects another region "
                f"({detail}: {message}); set AWS_REGION"
            )
        raise InputError(
            f"{what}: S3 endpoint {self.config.endpoint} answered {detail}"
            + (f": {message}" if message else "")
        )

    def _send(
        self, method: str, url: str, what: str, content: bytes | None = None
    ) -> httpx.Response:
        payload = EMPTY_SHA256 if content is None else hashlib.sha256(content).hexdigest()

        def once() -> httpx.Response:
            headers = sign(self.config, method, url, payload_sha256=payload)
            try:
                response = self._http.request(method, url, headers=headers, content=content)
            except httpx.TransportError as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            self._check(response.status_code, response.content, what)
            return response

        return self._retrying(once, what)

    # -- operations ----------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str, page_size: int = 1000) -> list[S3Object]:
        """Every object whose key starts with `prefix` (ListObjectsV2, all pages)."""
        out: list[S3Object] = []
        token: str | None = None
        what = f"s3://{bucket}/{prefix}"
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if token:
                query["continuation-token"] = token
            url = object_url(self.config.endpoint, bucket, query=query)
            page, token = self._parse_listing(self._send("GET", url, what).content, what)
            out += page
            if token is None:
                return out

    def _parse_listing(self, body: bytes, what: str) -> tuple[list[S3Object], str | None]:
        """One ListObjectsV2 page: its objects, and the token of the next page (or None)."""
        try:
            root = ET.fromstring(body)
            if _strip_ns(root.tag) != "ListBucketResult":
                raise ValueError(root.tag)
            found = {_strip_ns(e.tag): e for e in root if _strip_ns(e.tag) != "Contents"}
            page = []
            for elem in root:
                if _strip_ns(elem.tag) == "Contents":
                    fields = {_strip_ns(c.tag): (c.text or "") for c in elem}
                    page.append(
                        S3Object(fields["Key"], int(fields["Size"]), fields.get("ETag", ""))
                    )
        except (ET.ParseError, KeyError, ValueError):
            raise InputError(
                f"{what}: {self.config.endpoint} did not answer with an S3 listing; check "
                "AWS_ENDPOINT_URL"
            ) from None
        truncated, token = found.get("IsTruncated"), found.get("NextContinuationToken")
        more = truncated is not None and (truncated.text or "").lower() == "true"
        return page, (token.text if more and token is not None else None)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write one object whole (a PUT replaces it atomically: readers see the old or the new
        bytes, never a part). Retried: writing the same bytes twice is harmless."""
        url = object_url(self.config.endpoint, bucket, key)
        self._send("PUT", url, f"s3://{bucket}/{key}", content=data)

    def get(self, bucket: str, key: str) -> bytes | None:
        """One object's bytes, or None when there is no such key."""
        url = object_url(self.config.endpoint, bucket, key)
        what = f"s3://{bucket}/{key}"

        def once() -> bytes | None:
            try:
                response = self._http.get(url, headers=sign(self.config, "GET", url))
            except httpx.TransportError as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if response.status_code == 404 and _error_code(response.content)[0] == "NoSuchKey":
                return None
            self._check(response.status_code, response.content, what)
            return response.content

        return self._retrying(once, what)

    def delete(self, bucket: str, key: str) -> None:
        """Remove one object (no error when it is already gone, as S3 answers)."""
        url = object_url(self.config.endpoint, bucket, key)
        self._send("DELETE", url, f"s3://{bucket}/{key}")

    @contextmanager
    def _stream(self, bucket: str, key: str) -> Iterator[Iterator[bytes]]:
        url = object_url(self.config.endpoint, bucket, key)
        what = f"s3://{bucket}/{key}"
        with self._http.stream("GET", url, headers=sign(self.config, "GET", url)) as response:
            if response.status_code >= 300:
                self._check(response.status_code, response.read(), what)
            yield response.iter_bytes(CHUNK)

    def download(self, bucket: str, key: str, dest: Path | None) -> tuple[int, str]:
        """Stream one object into `dest` (or only hash it when None): (bytes, sha256 hex).

        A failed attempt starts the object over, so a retried download is never spliced.
        """
        what = f"s3://{bucket}/{key}"

        def once() -> tuple[int, str]:
            digest = hashlib.sha256()
            size = 0
            try:
                with (
                    self._stream(bucket, key) as chunks,
                    dest.open("wb") if dest else nullcontext() as out,
                ):
                    for chunk in chunks:
                        digest.update(chunk)
                        size += len(chunk)
                        if out is not None:
                            out.write(chunk)
            except httpx.TransportError as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            return size, digest.hexdigest()

        return self._retrying(once, what)
