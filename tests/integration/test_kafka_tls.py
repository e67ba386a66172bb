"""npsloop's Kafka clients over TLS, as a managed or Strimzi cluster requires: the real
broker behind a TLS-terminating listener (`tests/support/tls_proxy.py`), certificates
issued by a throwaway CA (trustme). Every client the kit builds (admin, producer, consumer)
goes through `client_options`, so these cover them all."""

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from nps_events import encode
from nps_kit.devstack import free_port
from nps_kit.messaging import Outgoing, Publisher, PublishError, ensure_topics
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import NOW, a_response, read_all
from tests.support.infra import new_broker
from tests.support.tls_proxy import tls_proxy

CA = trustme.CA()
SERVER_CERT = CA.issue_cert("127.0.0.1", "localhost")
CLIENT_CERT = CA.issue_cert("npsloop-ingest")


def _server_context(*, client_certificates: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    SERVER_CERT.configure_cert(context)
    if client_certificates:
        CA.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Listener:
    def __init__(self, port: int, files: Path) -> None:
        self.bootstrap = f"127.0.0.1:{port}"
        self.ca = files / "ca.pem"
        self.cert = files / "client.pem"
        self.key = files / "client.key"


def _listener(tmp: Path, *, client_certificates: bool) -> Iterator[Listener]:
    port, broker_port = free_port(), free_port()
    broker = new_broker(tmp, port=broker_port, advertised=f"127.0.0.1:{port}")
    CA.cert_pem.write_to_path(str(tmp / "ca.pem"))
    CLIENT_CERT.cert_chain_pems[0].write_to_path(str(tmp / "client.pem"))
    CLIENT_CERT.private_key_pem.write_to_path(str(tmp / "client.key"))
    broker.start()
    try:
        context = _server_context(client_certificates=client_certificates)
        with tls_proxy(port=port, upstream=broker_port, context=context):
            yield Listener(port, tmp)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    yield from _listener(tmp_path_factory.mktemp("tls"), client_certificates=False)


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    yield from _listener(tmp_path_factory.mktemp("mtls"), client_certificates=True)


async def _round_trip(settings: KafkaSettings) -> None:
    """Create a topic, publish an event acknowledged by the broker, read it back."""
    topic = f"test.tls.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic], partitions=1)
    publisher = Publisher(settings, client_id="tls")
    await publisher.start()
    try:
        await publisher.check()
        event = a_response()
        message = encode(event, source="/test", time=NOW)
        await publisher.send_many([Outgoing(topic, message.key, message.value, message.headers)])
    finally:
        await publisher.stop()
    [record] = await read_all(settings, topic)
    assert dict(record.headers)["ce_id"] == str(event.event_id()).encode()


async def _refused(settings: KafkaSettings) -> None:
    publisher = Publisher(settings, client_id="tls-refused")
    await publisher.start()
    try:
        with pytest.raises(PublishError, match="not been reached"):
            await publisher.check()
    finally:
        await publisher.stop()


async def test_clients_publish_and_consume_over_tls(tls: Listener) -> None:
    await _round_trip(
        KafkaSettings(bootstrap_servers=tls.bootstrap, security_protocol="SSL", ssl_cafile=tls.ca)
    )


async def test_a_plaintext_client_never_reaches_a_tls_listener(tls: Listener) -> None:
    await _refused(KafkaSettings(bootstrap_servers=tls.bootstrap))


async def test_a_broker_certificate_from_another_ca_is_refused(
    tls: Listener, tmp_path: Path
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    await _refused(
        KafkaSettings(bootstrap_servers=tls.bootstrap, security_protocol="SSL", ssl_cafile=stranger)
    )


async def test_mutual_tls_with_the_client_certificate(mutual_tls: Listener) -> None:
    await _round_trip(
        KafkaSettings(
            bootstrap_servers=mutual_tls.bootstrap,
            security_protocol="SSL",
            ssl_cafile=mutual_tls.ca,
            ssl_certfile=mutual_tls.cert,
            ssl_keyfile=mutual_tls.key,
        )
    )


async def test_mutual_tls_refuses_a_client_without_its_certificate(
    mutual_tls: Listener,
) -> None:
    await _refused(
        KafkaSettings(
            bootstrap_servers=mutual_tls.bootstrap,
            security_protocol="SSL",
            ssl_cafile=mutual_tls.ca,
        )
    )
