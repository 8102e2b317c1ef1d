"""OSS error answers: the XML body, its EC codes, the response around it."""

from __future__ import annotations

import time
import uuid

from starlette.responses import Response

#: EC codes OSS puts in its error bodies (help.aliyun.com/zh/oss/support/<EC>).
EC_EXPIRED = "0002-00000069"
EC_SIGNATURE = "0002-00000040"
EC_ACCESS_KEY = "0002-00000902"


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


def error_response(status: int, body: bytes, request_id: str, ec: str) -> Response:
    """*body* as OSS sends it: XML, with its request id and EC in the headers."""
    return Response(
        body,
        status_code=status,
        media_type="application/xml",
        headers={"x-oss-request-id": request_id, "x-oss-ec": ec, "Server": "AliyunOSS"},
    )


def iso(ts: float) -> str:
    """A timestamp as OSS error bodies give it (``Expires``, ``ServerTime``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
