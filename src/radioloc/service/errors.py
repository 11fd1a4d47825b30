"""Google's error envelope for every 4xx and 5xx: ``{"error": {"code", "message", "errors": [{"domain", "reason",
"message"}]}}`` (the Geolocation API's, which Ichnaea also speaks)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

REASONS = {400: "badRequest", 401: "keyInvalid", 403: "insufficientPermissions", 404: "notFound", 405: "methodNotAllowed",
           409: "conflict", 413: "requestTooLarge", 415: "unsupportedMediaType", 422: "parseError", 429: "rateLimitExceeded",
           500: "backendError", 503: "backendError"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, domain: str = "global"):
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain


def envelope(status: int, reason: str, message: str, domain: str = "global", headers: dict | None = None) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "errors": [{"domain": domain, "reason": reason, "message": message}]}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return envelope(exc.status, exc.reason, exc.message, exc.domain)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return envelope(400, "parseError", f"body: not valid JSON ({first.get('msg')})")
        return envelope(400, "parseError", f"{_field(tuple(first.get('loc', ())))}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route"
        return envelope(exc.status_code, REASONS.get(exc.status_code, "badRequest"), message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        return envelope(500, "backendError", f"internal error ({type(exc).__name__})")
