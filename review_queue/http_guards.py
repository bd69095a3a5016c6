"""What every request and answer of the HTTP service passes through: the body cap, the security
headers, bounded error answers that never echo input values back, and path item-id checks.

Kept apart from review_queue.service (the endpoints) so the guarantees are read in one place.
"""

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medaug.schema import MAX_ID_CHARS

# A push of 1,000 typical samples is about 3 MB; the cap bounds what one request can make the
# server parse (a body of 10,000 samples at the field limits would be gigabytes).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_SHOWN_ERRORS = 20  # validation errors listed in one answer
MAX_MESSAGE_CHARS = 300  # per message / location part in an error answer
MAX_PUSH_SAMPLES = 10_000

# The page loads only its own script and stylesheet (no inline code), so the policy can be strict.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline starter script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Bounded and encodable as UTF-8 (a lone surrogate from the request becomes an escape)."""
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def validation_answer(errors: list[Any]) -> dict[str, Any]:
    """Where and what, for each of the first errors; the input values are never sent back."""
    shown = [
        {
            "loc": [p if isinstance(p, int) else clip(str(p), 100) for p in e.get("loc", ())],
            "msg": clip(str(e.get("msg", ""))),
            "type": clip(str(e.get("type", "")), 100),
        }
        for e in errors[:MAX_SHOWN_ERRORS]
    ]
    return {"detail": shown, "errors": len(errors)}


def check_item_id(item_id: str) -> str:
    """A path's item id must be one the store can hold; legacy ids with '/' still reach their item."""
    if not 1 <= len(item_id) <= MAX_ID_CHARS or "\x00" in item_id:
        raise HTTPException(
            422, f"item_id: must be 1-{MAX_ID_CHARS} characters without NUL (got {len(item_id)} characters)"
        )
    return item_id


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """Refuse request bodies over `limit` bytes: by Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            code, detail = (
                (413, f"request body larger than {self.limit} bytes")
                if declared.isdigit()
                else (400, "malformed Content-Length")
            )
            await JSONResponse({"detail": detail}, status_code=code)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)  # FastAPI passes HTTPExceptions through its body parsing
            return message

        await self.app(scope, limited, send)


class SecurityHeaders:
    """CSP (no framing), nosniff and no referrer on every response; API answers are never cached."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(("/docs", "/redoc")) else PAGE_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if path.startswith("/api/") or path == "/openapi.json":
            extra.append((b"cache-control", b"no-store"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)
