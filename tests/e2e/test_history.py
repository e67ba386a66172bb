"""History without spam (issue #16), through the running services: a year of responses imported
with `?backfill=true` is scored and counted, and opens no case and sends nothing; a response
answered longer ago than the policy's window, posted live, is counted and not followed up."""

import csv
import io
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import System
from tests.e2e.test_detractor_journey import AUTH, cases_of, emails_to, post
from tests.support.polling import eventually

CUSTOMERS = 250
ANSWERS_EACH = 4  # 1,000 responses


def _segment(score: int) -> str:
    return "promoters" if score >= 9 else "passives" if score >= 7 else "detractors"


def _last_year() -> list[dict[str, Any]]:
    """1,000 answers of 250 customers, spread over last year, every score from 0 to 10."""
    year = datetime.now(UTC).year - 1
    start = datetime(year, 1, 1, 9, tzinfo=UTC)
    run = uuid.uuid4().hex[:8]
    rows = []
    for i in range(CUSTOMERS * ANSWERS_EACH):
        customer = f"hist-{run}-{i % CUSTOMERS}"
        rows.append(
            {
                "response_id": f"hist-{run}-{i}",
                "survey_id": f"history-{run}",
                "customer_id": customer,
                "customer_email": f"{customer}@example.com",
                "customer_name": "Ada",
                "score": (i * 7) % 11,
                "comment": "The delivery was late" if i % 3 == 0 else "",
                # Spread over every month of last year.
                "responded_at": (start + timedelta(days=(i * 37) % 365)).isoformat(),
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def _not_acted_on(client: httpx.AsyncClient, system: System, reason: str) -> float:
    """followup's count of responses not acted on for `reason`, from its metrics port."""
    scrape = (await client.get(system.services["followup"].metrics_url)).text
    found = re.search(
        rf'^npsloop_responses_not_acted_on_total\{{reason="{reason}"\}} (\S+)$', scrape, re.M
    )
    assert found is not None, "followup exposes npsloop_responses_not_acted_on_total"
    return float(found.group(1))


async def test_a_back_filled_year_is_counted_and_opens_nothing_and_sends_nothing(
    system: System,
) -> None:
    rows = _last_year()
    survey = rows[0]["survey_id"]
    expected = Counter(_segment(r["score"]) for r in rows)
    by_month = Counter(r["responded_at"][:7] for r in rows)
    async with system.client() as client:
        before = await _not_acted_on(client, system, "backfill")
        answer = await client.post(
            f"{system.url('ingest')}/v1/responses/import",
            params={"backfill": "true"},
            content=_csv(rows),
            headers={**AUTH, "Content-Type": "text/csv"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == len(rows), answer.json()["errors"]

        async def figures() -> dict[str, Any]:
            got = await client.get(f"{system.url('scoring')}/v1/nps", params={"survey_id": survey})
            got.raise_for_status()
            body: dict[str, Any] = got.json()
            return body

        nps = await eventually(
            figures,
            until=lambda f: f["responses"] == len(rows),
            what="scoring's figures counting all 1,000 back-filled responses",
        )
        # followup has decided on every one of them: each was set aside as back-fill.
        await eventually(
            lambda: _not_acted_on(client, system, "backfill"),
            until=lambda count: count >= before + len(rows),
            what="followup setting aside the 1,000 back-filled responses",
        )
        sample = [r["response_id"] for r in answer.json()["results"][:: len(rows) // 10]]
        decisions = [
            (await client.get(f"{system.url('followup')}/v1/responses/{response_id}")).json()
            for response_id in sample
        ]
        customers = sorted({r["customer_id"] for r in rows})
        cases = [await cases_of(client, system, c) for c in customers[:: CUSTOMERS // 10]]
    assert {k: nps[k] for k in ("promoters", "passives", "detractors")} == dict(expected)
    assert {s["period_start"][:7]: s["responses"] for s in nps["series"]} == dict(by_month)
    assert {(d["acted_on"], d["reason"]) for d in decisions} == {(False, "backfill")}
    assert cases == [[]] * len(cases)
    assert not [m for m in system.infra.mail.messages() if "hist-" in str(m["To"])]


async def test_a_live_response_older_than_the_window_is_counted_and_not_followed_up(
    system: System,
) -> None:
    customer = f"late-{uuid.uuid4().hex[:8]}"
    survey = f"late-{uuid.uuid4().hex[:8]}"
    body = {
        "response_id": f"r-{uuid.uuid4()}",
        "survey_id": survey,
        "customer": {"id": customer, "email": f"{customer}@example.com", "name": "Ada"},
        "score": 2,
        "comment": "Setup took far too long",
        "responded_at": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
    }
    async with system.client() as client:
        answer = await post(client, system, body)
        assert answer.status_code == 202, answer.text
        response_id = answer.json()["response_id"]

        async def decision() -> httpx.Response:
            return await client.get(f"{system.url('followup')}/v1/responses/{response_id}")

        found = await eventually(
            decision, until=lambda r: r.status_code == 200, what="followup's decision"
        )
        nps = (
            await client.get(f"{system.url('scoring')}/v1/nps", params={"survey_id": survey})
        ).json()
        assert await cases_of(client, system, customer) == []
    said = found.json()
    assert (said["acted_on"], said["reason"], said["rule"], said["window"]) == (
        False,
        "older_than_window",
        "detractor",
        "7 days",
    )
    assert "case_id" not in said
    assert nps["detractors"] == 1
    # No case, so no action was ever requested: there is nothing left in flight to wait for.
    assert emails_to(system, customer) == []
