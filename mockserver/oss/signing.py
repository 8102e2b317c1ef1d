"""OSS V1 signatures: the string to sign, the HMAC, and presigned URLs.

Per Alibaba Cloud's "Include a V1 signature in a URL" and "Include a V1 signature in the
Authorization header" pages (help.aliyun.com, doc-detail 31952 / 31951):
``Signature = base64(hmac-sha1(secret, VERB \\n Content-MD5 \\n Content-Type \\n Expires \\n
CanonicalizedOSSHeaders + CanonicalizedResource))`` with the resource ``/<bucket>/<key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

#: The mock's OSS credentials (the real ones are MinerU's and never reach a client).
ACCESS_KEY_ID = "LTAI5tMockDocinboxOSS01"
ACCESS_KEY_SECRET = "mock-oss-secret-do-not-use-in-production"
#: Presigned PUT URLs are valid this long (seed 002: "有效期为 24 小时").
PUT_URL_VALIDITY = 24 * 3600


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
