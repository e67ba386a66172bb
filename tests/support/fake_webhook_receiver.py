"""A team's own tool receiving npsloop's outbound webhooks: it verifies each delivery as the
Standard Webhooks specification says a receiver must (webhook-id, webhook-timestamp within 5
minutes, webhook-signature `v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the base64
secret after `whsec_`, any of several signatures), refuses a bad one with 401, dedupes on
webhook-id, and can answer scripted errors (429 with Retry-After, 503)."""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeReceiver:
    secret: str
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    #: Each delivery's `webhook-timestamp`, as received.
    stamps: list[str] = field(default_factory=list)
    _script: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def fail_next(self, status: int, *, retry_after: float | None = None) -> None:
        self._script.append(
            (status, {"Retry-After": str(retry_after)} if retry_after is not None else {})
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks/npsloop", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.deliveries += 1
        body = await request.body()
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        self.stamps.append(stamp)
        given = request.headers.get("webhook-signature", "").split()
        if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return JSONResponse({"error": "missing or stale webhook headers"}, status_code=401)
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        expected = base64.b64encode(
            hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        if not any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in given):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"error": "JSON expected"}, status_code=415)
        if self._script:
            status, headers = self._script.pop(0)
            return Response(status_code=status, headers=headers)
        self.received.setdefault(msg_id, json.loads(body))
        return Response(status_code=204)
