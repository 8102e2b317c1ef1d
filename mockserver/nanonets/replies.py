"""Nanonets' error answers: ``{"message": ...}`` with the API reference's texts."""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, Response

MSG_FILE_MISSING = "File missing. Check if you have included a file in the request"
MSG_BAD_FILE = "Incorrect image. Check if file you included is a valid PNG or JPEG"
MSG_BAD_URLS = "Check if file urls are missing or path entered is valid"
MSG_UNAUTHORIZED = "The API key was missing or invalid"
MSG_QUOTA = (
    "Exhausted Free API Calls. You have exhausted your free API calls please change your plan"
)
MSG_NO_MODEL = "Model does not exists. Check if the model id exists"
MSG_RATE = "Too Many Requests. You have hit the rate limit for requests"
MSG_NO_FILE = "File not found"

#: What a front proxy sends when a sync prediction takes longer than it waits.
GATEWAY_TIMEOUT_HTML = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def s3_error(status: int, code: str, message: str) -> Response:
    """The XML error of the storage behind ``signed_urls`` (expired or tampered links)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
