"""Presigned uploads the way Aliyun OSS does them (the MinerU ``file-urls/batch`` links).

MinerU hands out Aliyun OSS V1 query-signed PUT URLs
(``https://mineru.oss-cn-shanghai.aliyuncs.com/api-upload/...?OSSAccessKeyId=..&Expires=..
&Signature=..``, seed 002). The mock serves the same thing under ``/__oss/<bucket>/<key>``.

What is reproduced, per Alibaba Cloud's "Include a V1 signature in a URL" and "Include a V1
signature in the Authorization header" pages (help.aliyun.com, doc-detail 31952 / 31951):

* ``Signature = base64(hmac-sha1(secret, VERB \\n Content-MD5 \\n Content-Type \\n Expires \\n
  CanonicalizedOSSHeaders + CanonicalizedResource))`` with the resource ``/<bucket>/<key>``.
  The URL is signed with empty Content-MD5 and Content-Type, so a PUT that *sends* a
  Content-Type (or Content-MD5) computes a different string and gets
  403 ``SignatureDoesNotMatch`` — exactly why seed 002 says "上传文件时，无须设置
  Content-Type 请求头". The XML body carries ``StringToSign`` as OSS's does.
* ``Expires`` is Unix seconds on the mock clock; a request after it gets 403 ``AccessDenied``
  "Request has expired." (EC ``0002-00000069``, help.aliyun.com/zh/oss/support/0002-00000069).
* An unknown ``OSSAccessKeyId`` gets 403 ``InvalidAccessKeyId``.
* A good PUT answers 200, empty body, ``ETag: "<MD5 in upper-case hex>"`` and
  ``x-oss-request-id``; a second PUT to the same key replaces the object (OSS semantics).

Uploads stream to disk chunk by chunk (never the whole body in memory) and are hashed
(MD5 for the ETag, SHA-256 for the ledger) on the way. Services (MinerU) subscribe with
:meth:`Bucket.on_upload` to learn that an object arrived.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

#: The mock's OSS credentials (the real ones are MinerU's and never reach a client).
ACCESS_KEY_ID = "LTAI5tMockDocinboxOSS01"
ACCESS_KEY_SECRET = "mock-oss-secret-do-not-use-in-production"
#: Presigned PUT URLs are valid this long (seed 002: "有效期为 24 小时").
PUT_URL_VALIDITY = 24 * 3600
#: EC codes OSS puts in its error bodies (help.aliyun.com/zh/oss/support/<EC>).
EC_EXPIRED = "0002-00000069"
EC_SIGNATURE = "0002-00000040"
EC_ACCESS_KEY = "0002-00000902"
#: Write/hash granularity of uploads.
CHUNK = 1 << 16


def string_to_sign(
    verb: str,
    content_md5: str,
    content_type: str,
    expires: str,
    resource: str,
    oss_headers: dict[str, str] | None = None,
) -> str:
    """The V1 string-to-sign (``Expires`` takes the place of ``Date`` in a URL signature)."""
    canonical_headers = "".join(
        f"{name}:{value.strip()}\n"
        for name, value in sorted((k.lower(), v) for k, v in (oss_headers or {}).items())
        if name.startswith("x-oss-")
    )
    return f"{verb}\n{content_md5}\n{content_type}\n{expires}\n{canonical_headers}{resource}"


def sign(secret: str, to_sign: str) -> str:
    """``base64(hmac-sha1(secret, to_sign))``."""
    digest = hmac.new(secret.encode(), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def presign(
    base_url: str,
    bucket: str,
    key: str,
    expires: int,
    *,
    verb: str = "PUT",
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = ACCESS_KEY_SECRET,
) -> str:
    """A V1 query-signed URL for *verb* on ``/<bucket>/<key>`` under ``<base_url>/__oss``."""
    resource = f"/{bucket}/{key}"
    signature = sign(secret, string_to_sign(verb, "", "", str(expires), resource))
    query = urlencode(
        {"OSSAccessKeyId": access_key_id, "Expires": str(expires), "Signature": signature}
    )
    return f"{base_url.rstrip('/')}/__oss/{bucket}/{quote(key)}?{query}"


def error_xml(code: str, message: str, ec: str, **extra: str) -> bytes:
    """An OSS error body: ``<Error><Code/><Message/><RequestId/><HostId/>...<EC/></Error>``."""
    request_id = uuid.uuid4().hex[:24].upper()
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<Error>",
        f"  <Code>{code}</Code>",
        f"  <Message>{_xml_escape(message)}</Message>",
        f"  <RequestId>{request_id}</RequestId>",
        f"  <HostId>{_xml_escape(extra.pop('HostId', 'mineru.oss-cn-shanghai.aliyuncs.com'))}"
        "</HostId>",
    ]
    parts += [f"  <{name}>{_xml_escape(value)}</{name}>" for name, value in extra.items()]
    parts += [
        f"  <EC>{ec}</EC>",
        f"  <RecommendDoc>https://api.aliyun.com/troubleshoot?q={ec}</RecommendDoc>",
        "</Error>",
        "",
    ]
    return "\n".join(parts).encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _error(status: int, body: bytes, request_id: str, ec: str) -> Response:
    return Response(
        body,
        status_code=status,
        media_type="application/xml",
        headers={"x-oss-request-id": request_id, "x-oss-ec": ec, "Server": "AliyunOSS"},
    )


@dataclass
class StoredObject:
    """An object that finished uploading."""

    bucket: str
    key: str
    path: Path
    size: int
    md5: str  # hex
    sha256: str  # hex


UploadListener = Callable[[StoredObject], None]


class Bucket:
    """One OSS bucket of the mock: presigns, verifies and stores objects on disk."""

    def __init__(self, name: str, root: Callable[[], Path], clock: Any) -> None:
        self.name = name
        self._root = root
        self.clock = clock
        self._listeners: list[UploadListener] = []
        self._lock = threading.Lock()

    def on_upload(self, listener: UploadListener) -> None:
        """Call *listener* (in a worker thread) after every complete, verified PUT."""
        self._listeners.append(listener)

    def presign_put(self, base_url: str, key: str, validity: float = PUT_URL_VALIDITY) -> str:
        expires = int(self.clock.now() + validity)
        return presign(base_url, self.name, key, expires)

    def object_path(self, key: str) -> Path:
        safe = key.replace("..", "_").lstrip("/")
        return self._root() / self.name / safe


class Oss:
    """All buckets of one mock context (shared between the services that issue URLs)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.buckets: dict[str, Bucket] = {}
        self._root: Path | None = None
        self._lock = threading.Lock()
        ctx.on_reset(self._reset)

    def _reset(self) -> None:
        with self._lock:
            self._root = None  # the context wiped data_dir; make a fresh one lazily

    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.exists():
                self._root = self.ctx.new_dir("oss-")
            return self._root

    def bucket(self, name: str) -> Bucket:
        with self._lock:
            if name not in self.buckets:
                self.buckets[name] = Bucket(name, self.root, self.ctx.clock)
            return self.buckets[name]

    async def put(self, request: Request) -> Response:
        """``PUT /__oss/<bucket>/<key>``: verify the V1 URL signature, then stream to disk."""
        bucket_name = request.path_params["bucket"]
        key = request.path_params["key"]
        request_id = uuid.uuid4().hex[:24].upper()
        q = request.query_params
        access_key, expires, signature = (
            q.get("OSSAccessKeyId"),
            q.get("Expires"),
            q.get("Signature"),
        )
        now = self.ctx.clock.now()
        if not access_key or not expires or not signature:
            body = error_xml("AccessDenied", "AccessDenied", "0002-00000068")
            return _error(403, body, request_id, "0002-00000068")
        if access_key != ACCESS_KEY_ID:
            body = error_xml(
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                EC_ACCESS_KEY,
                OSSAccessKeyId=access_key,
            )
            return _error(403, body, request_id, EC_ACCESS_KEY)
        try:
            expires_at = int(expires)
        except ValueError:
            body = error_xml("AccessDenied", "Invalid expiration time.", "0002-00000070")
            return _error(403, body, request_id, "0002-00000070")
        if now > expires_at:
            body = error_xml(
                "AccessDenied",
                "Request has expired.",
                EC_EXPIRED,
                Expires=_iso(expires_at),
                ServerTime=_iso(now),
            )
            return _error(403, body, request_id, EC_EXPIRED)
        oss_headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-oss-")}
        to_sign = string_to_sign(
            "PUT",
            request.headers.get("content-md5", ""),
            request.headers.get("content-type", ""),
            expires,
            f"/{bucket_name}/{key}",
            oss_headers,
        )
        if not hmac.compare_digest(sign(ACCESS_KEY_SECRET, to_sign), signature):
            body = error_xml(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
                EC_SIGNATURE,
                OSSAccessKeyId=access_key,
                SignatureProvided=signature,
                StringToSign=to_sign,
                StringToSignBytes=" ".join(f"{b:02X}" for b in to_sign.encode()),
            )
            return _error(403, body, request_id, EC_SIGNATURE)

        bucket = self.bucket(bucket_name)
        final = bucket.object_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        md5, sha = hashlib.md5(), hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                async for chunk in request.stream():
                    if not chunk:
                        continue
                    out.write(chunk)
                    md5.update(chunk)
                    sha.update(chunk)
                    size += len(chunk)
            os.replace(tmp, final)  # atomic: a re-PUT replaces the object whole
        finally:
            if tmp.exists():
                tmp.unlink()
        stored = StoredObject(bucket_name, key, final, size, md5.hexdigest(), sha.hexdigest())
        for listener in list(bucket._listeners):
            await anyio.to_thread.run_sync(listener, stored)
        return Response(
            b"",
            status_code=200,
            headers={
                "ETag": f'"{stored.md5.upper()}"',
                "Content-MD5": base64.b64encode(md5.digest()).decode(),
                "x-oss-request-id": request_id,
                "Server": "AliyunOSS",
            },
        )


_registry: weakref.WeakKeyDictionary[Any, Oss] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def for_context(ctx: Any) -> Oss:
    """The one :class:`Oss` of *ctx* (created on first use), shared by every service."""
    with _registry_lock:
        oss = _registry.get(ctx)
        if oss is None:
            oss = _registry[ctx] = Oss(ctx)
        return oss


def routes(ctx: Any) -> list[BaseRoute]:
    """The presigned-upload endpoint: ``PUT /__oss/{bucket}/{key:path}``."""
    oss = for_context(ctx)
    return [Route("/__oss/{bucket}/{key:path}", oss.put, methods=["PUT"])]
