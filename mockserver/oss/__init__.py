"""Presigned uploads the way Aliyun OSS does them (the MinerU ``file-urls/batch`` links).

MinerU hands out Aliyun OSS V1 query-signed PUT URLs
(``https://mineru.oss-cn-shanghai.aliyuncs.com/api-upload/...?OSSAccessKeyId=..&Expires=..
&Signature=..``, seed 002). The mock serves the same thing under ``/__oss/<bucket>/<key>``.

What is reproduced, per Alibaba Cloud's "Include a V1 signature in a URL" and "Include a V1
signature in the Authorization header" pages (help.aliyun.com, doc-detail 31952 / 31951):

* The V1 signature over ``/<bucket>/<key>`` (:mod:`~mockserver.oss.signing`). The URL is
  signed with empty Content-MD5 and Content-Type, so a PUT that *sends* either gets 403
  ``SignatureDoesNotMatch`` (seed 002: "上传文件时，无须设置 Content-Type 请求头").
* ``Expires`` is Unix seconds on the mock clock; a request after it gets 403 ``AccessDenied``
  "Request has expired." (EC ``0002-00000069``, help.aliyun.com/zh/oss/support/0002-00000069).
* An unknown ``OSSAccessKeyId`` gets 403 ``InvalidAccessKeyId``.
* A good PUT answers 200, empty body, ``ETag: "<MD5 in upper-case hex>"`` and
  ``x-oss-request-id``; a second PUT to the same key replaces the object (OSS semantics).

Modules: :mod:`~mockserver.oss.signing` (V1 signatures, presigned URLs),
:mod:`~mockserver.oss.buckets` (buckets, stored objects, upload listeners — services such
as MinerU subscribe with :meth:`Bucket.on_upload`), :mod:`~mockserver.oss.upload` (the PUT
endpoint), :mod:`~mockserver.oss.errors` (OSS's XML errors).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..core.context import MockContext
from .buckets import for_context
from .upload import Uploads


def routes(ctx: MockContext) -> list[BaseRoute]:
    """The presigned-upload endpoint: ``PUT /__oss/{bucket}/{key:path}``."""
    uploads = Uploads(for_context(ctx))
    return [Route("/__oss/{bucket}/{key:path}", uploads.put, methods=["PUT"])]
