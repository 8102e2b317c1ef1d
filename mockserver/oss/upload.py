"""``PUT /__oss/<bucket>/<key>``: a presigned upload, checked and stored as OSS does.

The URL is signed with empty Content-MD5 and Content-Type, so a PUT that *sends* a
Content-Type (or Content-MD5) computes a different string and gets 403
``SignatureDoesNotMatch`` — exactly why seed 002 says "上传文件时，无须设置 Content-Type
请求头". The XML body carries ``StringToSign`` as OSS's does. Uploads stream to disk chunk
by chunk (never the whole body in memory), hashed on the way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .buckets import Bucket, Oss, StoredObject
from .errors import EC_ACCESS_KEY, EC_EXPIRED, EC_SIGNATURE, error_response, error_xml, iso
from .signing import ACCESS_KEY_ID, ACCESS_KEY_SECRET, sign, string_to_sign

#: Write/hash granularity of uploads.
CHUNK = 1 << 16


class Uploads:
    """The presigned-upload endpoint over the buckets of one mock context."""

    def __init__(self, oss: Oss) -> None:
        self.oss = oss

    async def put(self, request: Request) -> Response:
        """``PUT /__oss/<bucket>/<key>``: verify the V1 URL signature, then stream to disk."""
        request_id = uuid.uuid4().hex[:24].upper()
        refused = _refusal(request, self.oss.ctx.clock.now(), request_id)
        if refused is not None:
            return refused
        bucket = self.oss.bucket(request.path_params["bucket"])
        stored = await _store(bucket, request.path_params["key"], request)
        for listener in bucket.listeners():
            await anyio.to_thread.run_sync(listener, stored)
        return Response(
            b"",
            status_code=200,
            headers={
                "ETag": f'"{stored.md5.upper()}"',
                "Content-MD5": base64.b64encode(bytes.fromhex(stored.md5)).decode(),
                "x-oss-request-id": request_id,
                "Server": "AliyunOSS",
            },
        )


def _refusal(request: Request, now: float, request_id: str) -> Response | None:
    """The 403 OSS answers a PUT whose URL is incomplete, expired or badly signed."""
    q = request.query_params
    access_key, expires, signature = q.get("OSSAccessKeyId"), q.get("Expires"), q.get("Signature")
    if not access_key or not expires or not signature:
        body = error_xml("AccessDenied", "AccessDenied", "0002-00000068")
        return error_response(403, body, request_id, "0002-00000068")
    if access_key != ACCESS_KEY_ID:
        body = error_xml(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            EC_ACCESS_KEY,
            OSSAccessKeyId=access_key,
        )
        return error_response(403, body, request_id, EC_ACCESS_KEY)
    try:
        expires_at = int(expires)
    except ValueError:
        body = error_xml("AccessDenied", "Invalid expiration time.", "0002-00000070")
        return error_response(403, body, request_id, "0002-00000070")
    if now > expires_at:
        body = error_xml(
            "AccessDenied",
            "Request has expired.",
            EC_EXPIRED,
            Expires=iso(expires_at),
            ServerTime=iso(now),
        )
        return error_response(403, body, request_id, EC_EXPIRED)
    return _signature_refusal(request, access_key, expires, signature, request_id)


def _signature_refusal(
    request: Request, access_key: str, expires: str, signature: str, request_id: str
) -> Response | None:
    """403 ``SignatureDoesNotMatch`` unless the request signs to *signature*."""
    oss_headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-oss-")}
    to_sign = string_to_sign(
        "PUT",
        request.headers.get("content-md5", ""),
        request.headers.get("content-type", ""),
        expires,
        f"/{request.path_params['bucket']}/{request.path_params['key']}",
        oss_headers,
    )
    if hmac.compare_digest(sign(ACCESS_KEY_SECRET, to_sign), signature):
        return None
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
    return error_response(403, body, request_id, EC_SIGNATURE)


async def _store(bucket: Bucket, key: str, request: Request) -> StoredObject:
    """Stream the body to the object's path; a re-PUT replaces the object whole."""
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
        os.replace(tmp, final)  # atomic
    finally:
        if tmp.exists():
            tmp.unlink()
    return StoredObject(bucket.name, key, final, size, md5.hexdigest(), sha.hexdigest())
