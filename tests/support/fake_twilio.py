"""A local Twilio Messages API that checks every request against Twilio's documented format
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource) and can
answer with Twilio's documented errors (https://www.twilio.com/docs/api/errors):

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth with the account SID
  and auth token (else 401, error 20003);
- form-encoded; `To` in E.164 (else 400, error 21211); exactly one of `From` (E.164) and
  `MessagingServiceSid` (`MG` + 32 hex) (else 400, error 21603 / 21703); `Body` of 1 to 1600
  characters (else 400, error 21602 / 21617);
- 201 with the Message resource (`sid` `SM` + 32 hex, `status` `queued`, `num_segments`);
- scripted answers for the next requests: `fail_next(429, retry_after=2)` (error 20429),
  `fail_next(503)`, `fail_next(400, code=21614)` (not a mobile number), `fail_next(400,
  code=21610)` (the recipient texted STOP) ...
- numbers in `unsubscribed` (they texted STOP to the sender) refused every time, as Twilio does
  until they text START: 400, error 21610.
"""

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: Twilio's own words for the errors whose meaning matters to notify.
DOCUMENTED = {21610: "Attempt to send to unsubscribed recipient"}

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 31 + "1"
    auth_token: str = "twilio-auth-token"
    messages: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    unsubscribed: set[str] = field(default_factory=set)
    _script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    #: Called as Twilio takes a message, before it answers (say, to cut the database).
    on_accept: Callable[[], None] | None = None

    def fail_next(
        self, status: int, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        code = code or {429: 20429, 503: 20503, 500: 20500}.get(status, 21211)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        message = DOCUMENTED.get(code, f"scripted {status}")
        self._script.append((status, _error(status, code, message), headers))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Messages.json",
                    self._create,
                    methods=["POST"],
                )
            ]
        )

    async def _create(self, request: Request) -> Response:
        self.requests += 1
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            request.path_params["account_sid"] != self.account_sid
            or request.headers.get("authorization") != f"Basic {expected}"
        ):
            return JSONResponse(_error(401, 20003, "Authenticate"), status_code=401)
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse(_error(400, 20001, "form-encoded body expected"), 400)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        problem = _check(form)
        if problem is not None:
            return JSONResponse(_error(400, *problem), status_code=400)
        if form["To"] in self.unsubscribed:
            return JSONResponse(_error(400, 21610, DOCUMENTED[21610]), status_code=400)
        if self._script:
            status, body, headers = self._script.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        sid = "SM" + uuid.uuid4().hex
        self.messages.append({**form, "sid": sid})
        if self.on_accept is not None:
            self.on_accept()
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "error_code": None,
                "error_message": None,
            },
            status_code=201,
        )


def _check(form: dict[str, str]) -> tuple[int, str] | None:  # noqa: PLR0911 - one per rule
    if not E164.fullmatch(form.get("To", "")):
        return 21211, f"The 'To' number {form.get('To')} is not a valid phone number."
    senders = [k for k in ("From", "MessagingServiceSid") if k in form]
    if len(senders) != 1:
        return 21603, "Exactly one of 'From' and 'MessagingServiceSid' is required."
    if "From" in form and not E164.fullmatch(form["From"]):
        return 21212, "The 'From' number is not a valid phone number."
    if "MessagingServiceSid" in form and not MESSAGING_SERVICE.fullmatch(
        form["MessagingServiceSid"]
    ):
        return 21703, "The Messaging Service Sid is invalid."
    body = form.get("Body", "")
    if not body:
        return 21602, "Message body is required."
    if len(body) > 1600:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    return None


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
