"""A local Jira Cloud REST API (v3) that checks every request against Jira's documented
format (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/):

- basic auth with the account's email and an API token (else 401);
- `POST /rest/api/3/issue` with `{"fields": {...}}`: `project.key` of a known project,
  `issuetype.name`, a `summary` of at most 255 characters, a `description` in the Atlassian
  Document Format (`type` `doc`, `version` 1, block `content`), `priority.name` one of the
  site's priorities, `labels` without spaces; else 400 with `errorMessages` and `errors` per
  field. 201 with `id`, `key`, `self`;
- `PUT /rest/api/3/issue/{key}`: 404 for an unknown issue, 204 otherwise;
- scripted answers: `fail_next(429, retry_after=2)`, `fail_next(503)`;
- `transition(key, "Done", secret=…)`: an agent moves an issue, and the admin webhook's
  delivery Jira would post (https://developer.atlassian.com/cloud/jira/platform/webhooks/):
  a `jira:issue_updated` event with the status item in its changelog, signed
  `X-Hub-Signature: sha256=<hex>`, named by `X-Atlassian-Webhook-Identifier`.
"""

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nps_notify.adapters.helpdesk_webhooks import sign_jira

PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}


@dataclass
class FakeJira:
    email: str = "bot@example.com"
    api_token: str = "jira-api-token"
    project: str = "CS"
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    _script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _deliveries: int = 0

    def fail_next(self, status: int, *, retry_after: float | None = None) -> None:
        self._script.append(
            (status, {"Retry-After": str(retry_after)} if retry_after is not None else {})
        )

    def transition(self, key: str, to: str, *, secret: str) -> tuple[bytes, dict[str, str]]:
        """Move the issue to status `to`; the webhook delivery (body, headers) Jira sends."""
        issue = self.issues[key]
        previous = issue.get("status", {}).get("name", "To Do")
        issue["status"] = {
            "name": to,
            "statusCategory": {"key": "done" if to == "Done" else "indeterminate"},
        }
        self._deliveries += 1
        number = key.rsplit("-", 1)[1]
        body = json.dumps(
            {
                "timestamp": int(time.time() * 1000),
                "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_generic",
                "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Kim Agent"},
                "issue": {
                    "id": str(10000 + int(number)),
                    "self": f"https://acme.atlassian.net/rest/api/2/{10000 + int(number)}",
                    "key": key,
                    "fields": {"summary": issue.get("summary", ""), "status": issue["status"]},
                },
                "changelog": {
                    "id": str(20000 + self._deliveries),
                    "items": [
                        {
                            "field": "status",
                            "fieldtype": "jira",
                            "fieldId": "status",
                            "from": "3",
                            "fromString": previous,
                            "to": "10002",
                            "toString": to,
                        }
                    ],
                },
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": str(30000 + self._deliveries),
            **sign_jira(body, secret=secret),
        }
        return body, headers

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/rest/api/3/issue", self._create, methods=["POST"]),
                Route("/rest/api/3/issue/{key}", self._update, methods=["PUT"]),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        self.requests += 1
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"errorMessages": ["You are not authenticated."], "errors": {}}, status_code=401
            )
        if self._script:
            status, headers = self._script.pop(0)
            return JSONResponse(
                {"errorMessages": [f"scripted {status}"], "errors": {}},
                status_code=status,
                headers=headers,
            )
        return None

    async def _create(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        fields = (await request.json()).get("fields") or {}
        errors = _invalid(fields, self.project)
        if errors:
            return JSONResponse({"errorMessages": [], "errors": errors}, status_code=400)
        number = len(self.issues) + 1
        key = f"{self.project}-{number}"
        self.issues[key] = fields
        return JSONResponse(
            {"id": str(10000 + number), "key": key, "self": f"/rest/api/3/issue/{10000 + number}"},
            status_code=201,
        )

    async def _update(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        issue = self.issues.get(request.path_params["key"])
        if issue is None:
            return JSONResponse(
                {
                    "errorMessages": [
                        "Issue does not exist or you do not have permission to see it."
                    ],
                    "errors": {},
                },
                status_code=404,
            )
        fields = (await request.json()).get("fields") or {}
        if "priority" in fields and fields["priority"].get("name") not in PRIORITIES:
            return JSONResponse(
                {"errorMessages": [], "errors": {"priority": "Specify a valid priority."}}, 400
            )
        issue.update(fields)
        return Response(status_code=204)


def _adf_ok(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("type") == "doc"
        and doc.get("version") == 1
        and isinstance(doc.get("content"), list)
        and all(isinstance(block, dict) and "type" in block for block in doc["content"])
    )


def _invalid(fields: dict[str, Any], project: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (fields.get("project") or {}).get("key") != project:
        errors["project"] = "Specify a valid project ID or key"
    if not (fields.get("issuetype") or {}).get("name"):
        errors["issuetype"] = "Specify an issue type"
    summary = fields.get("summary")
    if not summary or len(summary) > 255:
        errors["summary"] = "You must specify a summary of the issue (at most 255 characters)."
    if "description" in fields and not _adf_ok(fields["description"]):
        errors["description"] = "Operation value must be an Atlassian Document."
    if (fields.get("priority") or {}).get("name") not in PRIORITIES:
        errors["priority"] = "Specify a valid priority."
    if any(" " in label for label in fields.get("labels", [])):
        errors["labels"] = "The label must not contain spaces."
    return errors
