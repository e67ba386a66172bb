"""A local Zendesk Tickets API that checks every request against Zendesk's documented format
(https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/) and answers as
Zendesk does:

- API-token authentication: HTTP basic `{email}/token:{api_token}` (else 401
  `{"error": "Couldn't authenticate you"}`);
- `POST /api/v2/tickets.json` with `{"ticket": {...}}`: a `comment` with `body` or
  `html_body`, `priority` one of low, normal, high, urgent, a `requester` with a valid
  `email` if any (else 422 `RecordInvalid` with `details`); 201 with the ticket;
- `Idempotency-Key` (https://developer.zendesk.com/api-reference/introduction/idempotency/):
  a repeat with the same body answers the first ticket and
  `x-zendesk-api-idempotency-key-status: hit`; the same key with another body is 400
  `IdempotentRequestError`;
- `PUT /api/v2/tickets/{id}.json`: 404 `RecordNotFound` for an unknown ticket, else 200;
- scripted answers: `fail_next(429, retry_after=2)`, `fail_next(503)`, ...
"""

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nps_notify.adapters.helpdesk_webhooks import sign_zendesk

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PRIORITIES = {"low", "normal", "high", "urgent"}


@dataclass
class FakeZendesk:
    email: str = "agent@example.com"
    api_token: str = "zendesk-api-token"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    _keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def fail_next(self, status: int, *, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"error": "TooManyRequests" if status == 429 else "ServiceUnavailable"}
        self._script.append((status, body, headers))

    def solve(self, ticket_id: int, *, webhook_url: str, secret: str) -> httpx.Response:
        """An agent solves the ticket: Zendesk posts its signed `ticket.status_changed` event
        to the webhook (https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/)."""
        ticket = self.tickets[ticket_id]
        previous, ticket["status"] = ticket["status"], "solved"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps(
            {
                "type": "zen:event-type:ticket.status_changed",
                "account_id": 88888888,
                "id": str(uuid.uuid4()),
                "time": now,
                "zendesk_event_version": "2022-11-06",
                "subject": f"zen:ticket:{ticket_id}",
                "detail": {
                    "id": str(ticket_id),
                    "status": "SOLVED",
                    "external_id": ticket.get("external_id", ""),
                    "priority": str(ticket.get("priority", "")).upper(),
                    "updated_at": now,
                },
                "event": {"current": "SOLVED", "previous": str(previous).upper()},
            }
        ).encode()
        return httpx.post(
            webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Zendesk Webhook",
                **sign_zendesk(body, secret=secret, timestamp=now),
            },
            timeout=10,
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/tickets.json", self._create, methods=["POST"]),
                Route("/api/v2/tickets/{ticket_id:int}.json", self._update, methods=["PUT"]),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        self.requests += 1
        expected = base64.b64encode(f"{self.email}/token:{self.api_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "Couldn't authenticate you"}, status_code=401)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "Unsupported Media Type"}, status_code=415)
        if self._script:
            status, body, headers = self._script.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        return None

    async def _create(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(raw).hexdigest()
        if key is not None and key in self._keys:
            seen, ticket = self._keys[key]
            if seen != digest:
                return JSONResponse(
                    {
                        "error": "IdempotentRequestError",
                        "description": "Request parameters do not match the original request",
                    },
                    status_code=400,
                )
            return JSONResponse(
                {"ticket": ticket},
                status_code=201,
                headers={"x-zendesk-api-idempotency-key-status": "hit"},
            )
        ticket_in = json.loads(raw).get("ticket")
        details = _invalid(ticket_in)
        if details:
            return JSONResponse(
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": details,
                },
                status_code=422,
            )
        ticket = {
            "id": len(self.tickets) + 1,
            "status": "new",
            **{k: v for k, v in ticket_in.items() if k != "comment"},
            "description": ticket_in["comment"].get("body") or ticket_in["comment"]["html_body"],
            "comment_public": ticket_in["comment"].get("public", True),
        }
        self.tickets[ticket["id"]] = ticket
        headers = {}
        if key is not None:
            self._keys[key] = (digest, ticket)
            headers["x-zendesk-api-idempotency-key-status"] = "miss"
        return JSONResponse({"ticket": ticket}, status_code=201, headers=headers)

    async def _update(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        ticket = self.tickets.get(request.path_params["ticket_id"])
        if ticket is None:
            return JSONResponse(
                {"error": "RecordNotFound", "description": "Not found"}, status_code=404
            )
        changes = (await request.json()).get("ticket") or {}
        if "priority" in changes and changes["priority"] not in PRIORITIES:
            return JSONResponse(
                {"error": "RecordInvalid", "details": {"priority": [{"description": "invalid"}]}},
                status_code=422,
            )
        ticket.update(changes)
        return JSONResponse({"ticket": ticket}, status_code=200)


def _invalid(ticket: Any) -> dict[str, list[dict[str, str]]]:
    if not isinstance(ticket, dict):
        return {"base": [{"description": "ticket is required"}]}
    details: dict[str, list[dict[str, str]]] = {}
    comment = ticket.get("comment")
    if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
        details["description"] = [{"description": "Description: cannot be blank"}]
    if ticket.get("priority") not in PRIORITIES:
        details["priority"] = [{"description": "Priority: is not valid"}]
    requester = ticket.get("requester")
    if requester is not None and not EMAIL.fullmatch(str(requester.get("email", ""))):
        details["requester"] = [{"description": "Requester: email is invalid"}]
    return details
