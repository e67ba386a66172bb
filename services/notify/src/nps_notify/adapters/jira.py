"""Helpdesk tickets as Jira Cloud issues (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-post):
create with `POST /rest/api/3/issue` (the description in the Atlassian Document Format), raise
the priority with `PUT /rest/api/3/issue/{key}`. Basic auth: the account's email and an API
token."""

import httpx

from nps_notify.adapters.provider_http import Classify, ProviderClient, deferred
from nps_notify.config import JiraSettings
from nps_notify.domain.dispatch import DispatchState, Outcome, TicketJob


def adf(text: str) -> dict[str, object]:
    """Plain text as an Atlassian Document Format document: one paragraph per paragraph."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": paragraph}]}
            for paragraph in text.split("\n\n")
            if paragraph.strip()
        ],
    }


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    said = [
        *body.get("errorMessages", []),
        *(f"{k}: {v}" for k, v in body.get("errors", {}).items()),
    ]
    return f"Jira {response.status_code}: " + ("; ".join(said) or response.reason_phrase)


def _classify(expected: int) -> Classify:
    def classify(response: httpx.Response) -> Outcome:
        if response.status_code == expected:
            key = response.json()["key"] if response.content else None
            return Outcome(DispatchState.SENT, provider_message_id=key)
        if response.status_code == 429 or response.status_code >= 500:
            return deferred(_error(response), response)
        return Outcome(DispatchState.FAILED, reason=_error(response))

    return classify


class JiraTicketChannel:
    """Opens one Jira issue per `CreateTicket` in the configured project. Jira has no
    idempotency key: an answer lost after Jira made the issue leaves the action `unknown`,
    never sent again (docs/notify.md)."""

    name = "ticket"
    dedupes_repeats = False

    def __init__(
        self,
        settings: JiraSettings,
        *,
        attempts: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._client = ProviderClient(
            name="Jira",
            base_url=settings.base_url or "",
            auth=(settings.email, settings.api_token.get_secret_value()),
            timeout=settings.timeout_seconds,
            attempts=attempts,
            rate_per_second=settings.rate_per_second,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, job: TicketJob) -> Outcome:
        priority = self._settings.priorities.get(job.priority)
        if priority is None:
            return Outcome(DispatchState.FAILED, reason=f"no Jira priority for {job.priority!r}")
        if job.raise_of is not None:
            if job.ticket_id is None:
                return Outcome(DispatchState.FAILED, reason="the case's ticket was never created")
            outcome = await self._client.call(
                "PUT",
                f"/rest/api/3/issue/{job.ticket_id}",
                json={"fields": {"priority": {"name": priority}}},
                classify=_classify(204),
                idempotent=True,
            )
            if outcome.state is DispatchState.SENT:
                return Outcome(DispatchState.SENT, provider_message_id=job.ticket_id)
            return outcome
        requester = (
            f"Customer: {job.requester_name or ''} <{job.requester_email}>\n\n"
            if job.requester_email
            else ""
        )
        return await self._client.call(
            "POST",
            "/rest/api/3/issue",
            json={
                "fields": {
                    "project": {"key": self._settings.project_key},
                    "issuetype": {"name": self._settings.issue_type},
                    "summary": job.subject[:255],
                    "description": adf(requester + job.body),
                    "priority": {"name": priority},
                    "labels": ["npsloop", f"npsloop-case-{job.case_id}"],
                }
            },
            classify=_classify(201),
            idempotent=False,
        )
