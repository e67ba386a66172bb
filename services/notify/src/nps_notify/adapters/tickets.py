"""Helpdesk tickets through the Zendesk Tickets API
(https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/): create with an
`Idempotency-Key`, raise the priority with an update."""

import httpx

from nps_notify.adapters.provider_http import Classify, ProviderClient, deferred
from nps_notify.config import ZendeskSettings
from nps_notify.domain.dispatch import DispatchState, Outcome, TicketJob

#: npsloop's priorities are Zendesk's own: low, normal, high, urgent.
PRIORITIES = {"low", "normal", "high", "urgent"}


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error")
    if isinstance(error, dict):  # {"error": {"title": …, "message": …}}
        error = error.get("title") or error.get("message")
    description = body.get("description") or body.get("details") or response.reason_phrase
    return f"Zendesk {response.status_code}" + (f" ({error})" if error else "") + f": {description}"


def _classify(expected: int) -> Classify:
    def classify(response: httpx.Response) -> Outcome:
        if response.status_code == expected:
            return Outcome(
                DispatchState.SENT, provider_message_id=str(response.json()["ticket"]["id"])
            )
        # 429 (with Retry-After), 409 (the same Idempotency-Key still in flight), 5xx: later.
        if response.status_code in (409, 429) or response.status_code >= 500:
            return deferred(_error(response), response)
        # 400 (a reused key with another body), 401, 403, 404, 422 RecordInvalid: for good.
        return Outcome(DispatchState.FAILED, reason=_error(response))

    return classify


class ZendeskTicketChannel:
    """Opens one Zendesk ticket per `CreateTicket`: the customer as requester, the case's
    priority, the response and its comment in a private comment with the case's link; and
    raises a ticket's priority on escalation (`RaiseTicketPriority`).

    Zendesk keeps an `Idempotency-Key` for 2 hours and answers a repeat with the ticket it
    made: the action id is the key, so a request whose answer was lost is simply sent again."""

    name = "ticket"
    dedupes_repeats = True

    def __init__(
        self,
        settings: ZendeskSettings,
        *,
        attempts: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._client = ProviderClient(
            name="Zendesk",
            base_url=settings.url,
            auth=(f"{settings.email}/token", settings.api_token.get_secret_value()),
            timeout=settings.timeout_seconds,
            attempts=attempts,
            rate_per_second=settings.rate_per_second,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, job: TicketJob) -> Outcome:
        if job.priority not in PRIORITIES:
            return Outcome(DispatchState.FAILED, reason=f"no Zendesk priority {job.priority!r}")
        if job.raise_of is not None:
            if job.ticket_id is None:
                return Outcome(DispatchState.FAILED, reason="the case's ticket was never created")
            return await self._client.call(
                "PUT",
                f"/api/v2/tickets/{job.ticket_id}.json",
                json={"ticket": {"priority": job.priority}},
                classify=_classify(200),
                idempotent=True,
            )
        ticket: dict[str, object] = {
            "subject": job.subject,
            "comment": {"body": job.body, "public": False},
            "priority": job.priority,
            "external_id": f"npsloop-case-{job.case_id}",
            "tags": ["npsloop", *self._settings.tags],
        }
        if job.requester_email:
            ticket["requester"] = {
                "email": job.requester_email,
                "name": job.requester_name or job.requester_email,
            }
        if self._settings.group_id is not None:
            ticket["group_id"] = self._settings.group_id
        return await self._client.call(
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": ticket},
            headers={"Idempotency-Key": str(job.action_id)},
            classify=_classify(201),
            idempotent=True,
        )
