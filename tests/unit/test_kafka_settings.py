"""Kafka security settings: inconsistent ones are refused at start-up, by name; consistent
ones reach every client as aiokafka's options."""

import ssl
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from nps_kit.messaging import client_options
from nps_kit.settings import KafkaSettings


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_the_default_is_plaintext_to_the_embedded_broker() -> None:
    options = client_options(KafkaSettings())
    assert options == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
        "metadata_max_age_ms": 300_000,
    }


def test_sasl_ssl_reaches_the_client_with_a_verifying_tls_context(ca_file: Path) -> None:
    settings = KafkaSettings(
        bootstrap_servers="kafka:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="npsloop",
        sasl_password="s3cret",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        ssl_cafile=ca_file,
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "npsloop"
    assert options["sasl_plain_password"] == "s3cret"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "s3cret" not in repr(settings)  # the password never reaches a log line


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "u"},
            "SASL_SSL needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"sasl_mechanism": "PLAIN"},
            "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        ({"ssl_cafile": "@ca"}, "KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        (
            {"security_protocol": "SSL", "ssl_certfile": "@ca"},
            "mutual TLS needs both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE",
        ),
        ({"security_protocol": "SSL", "ssl_cafile": "/nowhere/ca.pem"}, "ssl_cafile"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        (
            {"topic_replication_factor": "2", "topic_min_insync_replicas": "3"},
            "KAFKA_TOPIC_MIN_INSYNC_REPLICAS=3 is more than KAFKA_TOPIC_REPLICATION_FACTOR=2",
        ),
        ({"topic_replication_factor": "0"}, "topic_replication_factor"),
    ],
)
def test_inconsistent_settings_are_refused_by_name(
    fields: dict[str, str], message: str, ca_file: Path
) -> None:
    values = {k: (str(ca_file) if v == "@ca" else v) for k, v in fields.items()}
    with pytest.raises(ValidationError, match=message):
        KafkaSettings.model_validate(values)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))
    settings = KafkaSettings()
    assert settings.security_protocol == "SSL"
    assert settings.ssl_cafile == ca_file


def test_topics_are_created_as_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("KAFKA_METADATA_MAX_AGE_MS", "30000")
    monkeypatch.setenv("KAFKA_FETCH_MAX_WAIT_MS", "500")
    settings = KafkaSettings()
    assert settings.fetch_max_wait_ms == 500
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)
    assert client_options(settings)["metadata_max_age_ms"] == 30_000
