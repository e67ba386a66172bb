"""The embedded dev stack: a Kafka-protocol broker, PostgreSQL and an SMTP sink from wheels,
for `make run` and the test fixtures; Apache Kafka from Maven Central instead of the broker
when asked (`kafka.py`). Nothing here is used in production."""

from nps_kit.devstack.broker import EmbeddedBroker
from nps_kit.devstack.kafka import ApacheKafka, ApacheKafkaCluster
from nps_kit.devstack.mailsink import MailSink
from nps_kit.devstack.postgres import EmbeddedPostgres
from nps_kit.devstack.process import free_port, wait_for_port

__all__ = [
    "ApacheKafka",
    "ApacheKafkaCluster",
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "MailSink",
    "free_port",
    "wait_for_port",
]
