"""The embedded dev stack: a Kafka-protocol broker, PostgreSQL and an SMTP sink from wheels,
for `make run` and the test fixtures. Nothing here is used in production."""

from nps_kit.devstack.broker import EmbeddedBroker
from nps_kit.devstack.mailsink import MailSink
from nps_kit.devstack.postgres import EmbeddedPostgres
from nps_kit.devstack.process import free_port, wait_for_port

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "MailSink", "free_port", "wait_for_port"]
