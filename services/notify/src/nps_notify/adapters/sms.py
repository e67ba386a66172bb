"""SMS through the Twilio Messages API (form-encoded POST, basic auth with the account SID
and auth token; https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource)."""

from collections.abc import Mapping

import httpx

from nps_kit.clock import Clock, SystemClock
from nps_notify.adapters.provider_http import ProviderClient, deferred
from nps_notify.adapters.templates import PermanentFailure, TemplateRenderer
from nps_notify.config import TwilioSettings
from nps_notify.domain.dispatch import DispatchState, Outcome, SmsJob, fit_sms, is_e164
from nps_notify.domain.messages import Identity, identity_for

#: "Attempt to send to unsubscribed recipient": the customer texted STOP to this sender
#: (https://www.twilio.com/docs/api/errors/21610). Twilio refuses every later message until
#: they text START, so the customer goes on the do-not-contact list for SMS.
UNSUBSCRIBED = 21610


def classify(response: httpx.Response) -> Outcome:
    """Twilio answers 201 with the Message resource; errors are JSON with `code`, `message`
    and `more_info`. 429 (code 20429) and 5xx are transient; any other 4xx is not."""
    if response.status_code == 201:
        return Outcome(DispatchState.SENT, provider_message_id=str(response.json()["sid"]))
    try:
        error = response.json()
    except ValueError:
        error = {}
    code, message = error.get("code"), error.get("message") or response.reason_phrase
    said = f"Twilio {response.status_code}" + (f" (error {code})" if code else "") + f": {message}"
    if response.status_code == 429 or response.status_code >= 500:
        return deferred(said, response)
    return Outcome(DispatchState.FAILED, reason=said, unsubscribed=code == UNSUBSCRIBED)


class TwilioSmsChannel:
    """Sends each `SendSms` as one Twilio message, its text cut to `max_segments` segments.

    Twilio has no idempotency key: an answer lost after Twilio took the request leaves the
    action `unknown`, never sent again (docs/notify.md, "The crash window")."""

    name = "sms"
    dedupes_repeats = False

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        renderer: TemplateRenderer,
        attempts: int,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        sender: Identity | None = None,
        teams: Mapping[str, Identity] | None = None,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._clock = clock or SystemClock()
        self._sender = sender or Identity(
            from_address="", reply_to=None, brand="npsloop", signature="The customer success team"
        )
        self._teams = dict(teams or {})
        self._client = ProviderClient(
            name="Twilio",
            base_url=settings.base_url,
            auth=(settings.account_sid or "", settings.auth_token.get_secret_value()),
            timeout=settings.timeout_seconds,
            attempts=attempts,
            rate_per_second=settings.rate_per_second,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, job: SmsJob) -> Outcome:
        if not job.to:
            return Outcome(DispatchState.FAILED, reason="the customer has no phone number")
        if not is_e164(job.to):
            return Outcome(DispatchState.FAILED, reason="the phone number is not in E.164 form")
        identity = identity_for(job.team, teams=self._teams, default=self._sender)
        try:
            text = self._renderer.render_sms(
                job.template,
                {"brand": identity.brand, "signature": identity.signature, **job.context},
                locale=job.locale,
                now=self._clock.now(),
            )
            body = fit_sms(text, self._settings.max_segments)
        except PermanentFailure as exc:
            return Outcome(DispatchState.FAILED, reason=str(exc))
        sender = (
            {"MessagingServiceSid": self._settings.messaging_service_sid}
            if self._settings.messaging_service_sid
            else {"From": self._settings.from_number}
        )
        return await self._client.call(
            "POST",
            f"/2010-04-01/Accounts/{self._settings.account_sid}/Messages.json",
            data={"To": job.to, **sender, "Body": body},
            classify=classify,
            idempotent=False,
        )
