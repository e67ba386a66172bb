"""The do-not-contact list's use cases against the in-memory fake of their ports: people put a
customer on it and take them off one scope at a time (taking off what is not there is refused,
naming it), and providers' opt-outs land on it once however often they are redelivered."""

from datetime import UTC, datetime, timedelta

import pytest

from nps_events import ContactOptOut, OptOutScope
from nps_followup.domain.contact_rules import DoNotContactEntry
from nps_followup.handlers import (
    NotOnTheList,
    do_not_contact_of,
    put_on_do_not_contact,
    record_opt_outs,
    take_off_do_not_contact,
)
from tests.support.followup_fakes import InMemoryDoNotContact

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


async def test_a_person_puts_a_customer_on_the_list_with_their_reason_as_entered_by_hand() -> None:
    repo = InMemoryDoNotContact()

    await put_on_do_not_contact(repo, "c-1", OptOutScope.SMS, reason="asked on the phone", now=NOW)
    await put_on_do_not_contact(repo, "c-1", OptOutScope.EMAIL, reason=None, now=NOW)

    assert await do_not_contact_of(repo, "c-1") == [
        DoNotContactEntry("email", "api", None, NOW),
        DoNotContactEntry("sms", "api", "asked on the phone", NOW),
    ]
    assert await do_not_contact_of(repo, "c-2") == []


async def test_taking_a_customer_off_one_scope_leaves_their_other_scopes() -> None:
    repo = InMemoryDoNotContact()
    for scope in (OptOutScope.EMAIL, OptOutScope.SMS):
        await put_on_do_not_contact(repo, "c-1", scope, reason=None, now=NOW)

    await take_off_do_not_contact(repo, "c-1", OptOutScope.EMAIL)

    assert [e.scope for e in await do_not_contact_of(repo, "c-1")] == ["sms"]


@pytest.mark.parametrize("scope", [OptOutScope.SMS, OptOutScope.ALL])
async def test_taking_off_a_scope_the_customer_is_not_on_is_refused_naming_it(
    scope: OptOutScope,
) -> None:
    repo = InMemoryDoNotContact()
    await put_on_do_not_contact(repo, "c-1", OptOutScope.EMAIL, reason=None, now=NOW)

    with pytest.raises(NotOnTheList) as refused:
        await take_off_do_not_contact(repo, "c-1", scope)

    assert str(refused.value) == f"c-1 is not on the list for {scope.value}."
    assert [e.scope for e in await do_not_contact_of(repo, "c-1")] == ["email"]


def opt_out(provider_event_id: str, *, reason: str | None = None) -> ContactOptOut:
    return ContactOptOut(
        source="delighted",
        customer_id="c-1",
        scope=OptOutScope.EMAIL,
        provider_event_id=provider_event_id,
        occurred_at=NOW - timedelta(hours=1),
        reason=reason,
    )


async def test_a_providers_opt_out_is_recorded_once_however_often_it_is_delivered() -> None:
    repo = InMemoryDoNotContact()

    await record_opt_outs(repo, [opt_out("u-1")], now=NOW)
    await take_off_do_not_contact(repo, "c-1", OptOutScope.EMAIL)  # an admin took it back
    await record_opt_outs(repo, [opt_out("u-1")], now=NOW)  # a redelivery must not undo that

    assert await do_not_contact_of(repo, "c-1") == []


async def test_a_providers_opt_out_without_a_reason_names_the_providers_event() -> None:
    repo = InMemoryDoNotContact()

    await record_opt_outs(repo, [opt_out("u-1"), opt_out("u-2", reason="unsubscribed")], now=NOW)

    [entry] = await do_not_contact_of(repo, "c-1")
    assert entry == DoNotContactEntry(
        "email", "delighted", "provider event u-1", NOW - timedelta(hours=1)
    )
