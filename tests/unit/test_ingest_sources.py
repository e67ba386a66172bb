"""The sources file: validated at start-up, with errors that say where and why."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from nps_ingest.config import IngestSettings, SourcesError, load_sources, parse_sources
from nps_ingest.domain.sources import Proof, Provider

ENV = {"DELIGHTED_KEY": "delighted-api-key-1", "DELIGHTED_KEY_OLD": "delighted-api-key-0"}

GOOD = """
sources:
  acme-delighted:
    provider: delighted
    secrets:
      - env: DELIGHTED_KEY
      - env: DELIGHTED_KEY_OLD
    mapping:
      customer_id: Customer ID
  acme-typeform:
    provider: typeform
    secrets: [{value: "typeform-secret-1"}]
    tokens: [{value: "typeform-canonical-token"}]
    mapping: {score: nps_ref, comment: why_ref, customer_id: user_id}
  backfill:
    provider: canonical
    tokens: [{value: "backfill-token-1"}]
"""


def test_a_valid_file_yields_each_source_with_secrets_from_the_environment() -> None:
    sources = parse_sources(GOOD, ENV)
    assert set(sources) == {"acme-delighted", "acme-typeform", "backfill"}
    delighted = sources["acme-delighted"]
    assert delighted.provider is Provider.DELIGHTED
    assert delighted.secrets == ("delighted-api-key-1", "delighted-api-key-0")
    assert delighted.mapping.customer_id == "Customer ID"
    assert sources["acme-typeform"].mapping.score == "nps_ref"
    assert sources["backfill"].tokens == ("backfill-token-1",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: {x: {provider: zendesk}}", "sources.x.provider"),
        ("sources: {x: {provider: delighted}}", "needs at least one secret"),
        ("sources: {x: {provider: canonical}}", "needs at least one token"),
        (
            "sources: {x: {provider: delighted, secrets: [{env: MISSING_VAR}]}}",
            "MISSING_VAR is not set",
        ),
        ("sources: {x: {provider: delighted, secrets: [{value: short}]}}", "at least 8"),
        (
            "sources: {x: {provider: formbricks, secrets: [{value: whsec_abcdefgh}]}}",
            "mapping.score",
        ),
        ("sources: {Bad Name: {provider: canonical}}", "Bad Name"),
        ("sources: {x: {provider: canonical, tokenz: []}}", "tokenz"),
        ("sources: [", "not valid YAML"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        parse_sources(text, {})


def test_api_tokens_shorthand_still_defines_canonical_sources(tmp_path: Path) -> None:
    file = tmp_path / "sources.yaml"
    file.write_text(GOOD)
    settings = IngestSettings(sources_file=file, api_tokens={"shop": SecretStr("shop-token-1")})
    sources = load_sources(settings, ENV)
    assert sources["shop"].provider is Provider.CANONICAL
    assert sources["shop"].tokens == ("shop-token-1",)
    assert "acme-delighted" in sources


def test_a_token_shared_by_two_sources_is_refused() -> None:
    settings = IngestSettings(
        api_tokens={"a": SecretStr("same-token-1"), "b": SecretStr("same-token-1")}
    )
    with pytest.raises(SourcesError, match="share a token"):
        load_sources(settings, {})


def test_an_unreadable_sources_file_is_refused(tmp_path: Path) -> None:
    settings = IngestSettings(sources_file=tmp_path / "nope.yaml")
    with pytest.raises(SourcesError, match="INGEST_SOURCES_FILE"):
        load_sources(settings, {})


def test_the_example_sources_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "sources.example.yaml"
    env = {
        "DELIGHTED_API_KEY": "delighted-key-123",
        "TYPEFORM_WEBHOOK_SECRET": "typeform-secret-123",
        "FORMBRICKS_WEBHOOK_SECRET": "whsec_c2VjcmV0LWtleS0xMjM0NTY=",
        "BACKFILL_TOKEN": "backfill-token-123",
    }
    assert parse_sources(example.read_text(), env)


def test_a_secret_may_come_from_a_mounted_file(tmp_path: Path) -> None:
    (tmp_path / "delighted").write_text("delighted-from-file\n")
    text = f"sources: {{x: {{provider: delighted, secrets: [{{file: {tmp_path}/delighted}}]}}}}"
    assert parse_sources(text, {})["x"].secrets == ("delighted-from-file",)
    with pytest.raises(SourcesError, match="cannot read"):
        parse_sources(text.replace("delighted}", "missing}"), {})


def test_the_kubernetes_default_sources_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    config_map = yaml.safe_load((root / "deploy/k8s/base/ingest-sources.yaml").read_text())
    assert parse_sources(config_map["data"]["sources.yaml"], {}) == {}


def test_ingest_refuses_to_start_with_a_wrong_sources_file(tmp_path: Path) -> None:
    file = tmp_path / "sources.yaml"
    file.write_text("sources: {acme: {provider: delighted, secrets: [{env: NOT_SET_ANYWHERE}]}}")
    env = {**os.environ, "INGEST_SOURCES_FILE": str(file), "INGEST_API_TOKENS": "{}"}
    env.pop("NOT_SET_ANYWHERE", None)
    done = subprocess.run(
        [sys.executable, "-m", "nps_ingest", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "sources.acme.secrets[0]: environment variable NOT_SET_ANYWHERE is not set" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


OWN_NAMES = """
sources:
  members-app:
    provider: standard-webhooks
    secrets: [{value: "whsec_c3RhbmRhcmQtd2ViaG9va3Mta2V5LTMyLWJ5dGVzISE="}]
    mapping:
      events:
        created: [nps.answer_submitted]
        updated: [nps.answer_edited]
        opted_out: [member.unsubscribed]
        ignored: [campaign.sent]
      response_id: data.answer_id
      survey_id: data.campaign.key
      customer: data.member
      customer_id: data.member.uid
      attributes: data.member.traits
      score: data.rating
      comment: data.feedback
      responded_at: data.submitted_at
      scope: data.channel
"""


def test_a_standard_webhooks_source_declares_its_own_event_types_and_field_paths() -> None:
    mapping = parse_sources(OWN_NAMES, {})["members-app"].mapping
    assert mapping.events is not None
    assert mapping.events.created == ("nps.answer_submitted",)
    assert mapping.events.opted_out == ("member.unsubscribed",)
    assert mapping.events.ignored == ("campaign.sent",)
    assert (mapping.response_id, mapping.customer, mapping.responded_at) == (
        "data.answer_id",
        "data.member",
        "data.submitted_at",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("provider: standard-webhooks", "provider: delighted"),
            "sources.members-app.mapping.response_id: only a standard-webhooks source reads it",
        ),
        (
            ("ignored: [campaign.sent]", "ignored: [nps.answer_edited]"),
            "'nps.answer_edited' is in both updated and ignored",
        ),
        (("score: data.rating", "score: data..rating"), "mapping.score"),
        (("customer: data.member", "customer: 'data member'"), "mapping.customer"),
        (
            ("created: [nps.answer_submitted]", "created: []"),
            "no event type means a response",
        ),
    ],
)
def test_a_wrong_standard_webhooks_mapping_is_refused_naming_it(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    text = OWN_NAMES.replace(old, new)
    if "no event type" in message:
        text = text.replace("updated: [nps.answer_edited]", "updated: []")
    with pytest.raises(SourcesError, match=re.escape(message)):
        parse_sources(text, {})


QUALTRICS_UNSIGNED = """
sources:
  acme-qualtrics:
    provider: qualtrics
    proof: path_secret              # POST /v1/webhooks/acme-qualtrics/<the secret>
    secrets: [{value: "kq3Yb0-pW7sXr2_LmN8vTz4cA6dE9fGh1JiKoUqR"}]
    api_token: {value: "qualtrics-api-token-1"}
    mapping: {score: QID1}
"""


def test_a_qualtrics_source_without_a_shared_key_is_proven_by_a_secret_path_segment() -> None:
    source = parse_sources(QUALTRICS_UNSIGNED, {})["acme-qualtrics"]
    assert source.proof is Proof.PATH_SECRET
    assert source.secrets == ("kq3Yb0-pW7sXr2_LmN8vTz4cA6dE9fGh1JiKoUqR",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("provider: qualtrics", "provider: delighted"), "delighted deliveries are proven by"),
        (("kq3Yb0-pW7sXr2_LmN8vTz4cA6dE9fGh1JiKoUqR", "short-secret-1"), "32 or more"),
        (("kq3Yb0-pW7sXr2_LmN8vTz4cA6dE9fGh1JiKoUqR", "a/b" * 12), "32 or more"),
    ],
)
def test_a_wrong_path_secret_source_is_refused_naming_it(
    change: tuple[str, str], message: str
) -> None:
    with pytest.raises(SourcesError, match=message):
        parse_sources(QUALTRICS_UNSIGNED.replace(*change), {})
