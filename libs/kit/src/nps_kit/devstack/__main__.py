"""`python -m nps_kit.devstack run|up|down`: the whole system on one machine.

`run` starts the broker, PostgreSQL, the SMTP sink, the dev identity provider, the four
services and the console in the foreground (Ctrl-C stops everything); `up` does the same in
the background and returns once every service is ready; `down` stops what `up` started;
`token` prints an access token of the dev identity provider. Whatever is configured through
`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`, `SMTP_HOST` or `AUTH_ISSUER` is used instead of the
embedded one.
The broker is Tansu (memory only) unless `NPSLOOP_BROKER=apache-kafka`: then it is Apache
Kafka, one KRaft node with its data in `var/kafka/`, and the producers are idempotent.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import uvicorn
from cryptography.fernet import Fernet
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.devstack.broker import EmbeddedBroker
from nps_kit.devstack.idp import DEV_CLIENTS, DEV_USERS, DevIdentityProvider, ServedIdentityProvider
from nps_kit.devstack.kafka import ApacheKafka
from nps_kit.devstack.mailsink import MailSink
from nps_kit.devstack.postgres import EmbeddedPostgres
from nps_kit.devstack.services import (
    SERVICES,
    ServiceProcess,
    create_topics,
    prepare,
    start_all,
)
from nps_kit.devstack.supervise import Supervisor


class DevStackSettings(BaseSettings):
    """`NPSLOOP_*` in the environment; real servers via the services' own variables."""

    model_config = SettingsConfigDict(env_prefix="NPSLOOP_", extra="ignore")

    var_dir: Path = Path("var")
    #: `tansu`: the embedded broker, memory only; `apache-kafka`: Apache Kafka from Maven
    #: Central (Java 17+ and Maven; `make kafka`), data on disk in `var/kafka/`.
    broker: Literal["tansu", "apache-kafka"] = "tansu"
    broker_port: int = 9092
    postgres_port: int = 55432
    smtp_port: int = 1025
    ingest_port: int = 8001
    scoring_port: int = 8002
    followup_port: int = 8003
    notify_port: int = 8004
    #: The console: where people sign in and work their cases.
    console_port: int = 8000
    #: The dev identity provider (OpenID Connect); its signing key is in `var/idp/`.
    idp_port: int = 8010
    #: Where each service serves its Prometheus metrics (`HTTP_METRICS_PORT`): its own port,
    #: since the four share this machine.
    ingest_metrics_port: int = 8101
    scoring_metrics_port: int = 8102
    followup_metrics_port: int = 8103
    notify_metrics_port: int = 8104
    console_metrics_port: int = 8100
    partitions: int = Field(default=3, ge=1)
    ingest_token: str = "dev-token"  # noqa: S105 - the documented local-only token


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class DevStack:
    def __init__(self, settings: DevStackSettings) -> None:
        self.settings = settings
        self.var = settings.var_dir.resolve()
        self.broker: EmbeddedBroker | ApacheKafka | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.mail: MailSink | None = None
        self.idp: ServedIdentityProvider | None = None
        self.services: list[ServiceProcess] = []

    def start(self) -> None:
        s = self.settings
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        idempotence = os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "false")
        if not kafka:
            if s.broker == "apache-kafka":
                self.broker = ApacheKafka(
                    port=s.broker_port,
                    data_dir=self.var / "kafka",
                    log_path=self.var / "log" / "broker.log",
                )
                idempotence = "true"
            else:
                self.broker = EmbeddedBroker(
                    port=s.broker_port, log_path=self.var / "log" / "broker.log"
                )
            self.broker.start()
            kafka = self.broker.bootstrap_servers
        database = os.environ.get("DATABASE_URL")
        if not database:
            self.postgres = EmbeddedPostgres(data_dir=self.var / "postgres", port=s.postgres_port)
            self.postgres.start()
            database = self.postgres.url
        smtp_host = os.environ.get("SMTP_HOST")
        smtp_port = os.environ.get("SMTP_PORT", str(s.smtp_port))
        if not smtp_host:
            self.mail = MailSink(directory=self.var / "mail", port=s.smtp_port)
            self.mail.start()
            smtp_host, smtp_port = "127.0.0.1", str(s.smtp_port)
        issuer = os.environ.get("AUTH_ISSUER")
        if not issuer:
            self.idp = ServedIdentityProvider(key_file=_key_file(s), port=s.idp_port)
            self.idp.start()
            issuer = self.idp.issuer
        env = {
            "AUTH_ISSUER": issuer,
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "KAFKA_ENABLE_IDEMPOTENCE": idempotence,
            "DATABASE_URL": database,
            "SMTP_HOST": smtp_host,
            "SMTP_PORT": smtp_port,
            "CONSOLE_SESSION_KEYS": os.environ.get("CONSOLE_SESSION_KEYS")
            or session_key(self.var / "console" / "session-key"),
            "INGEST_API_TOKENS": os.environ.get(
                "INGEST_API_TOKENS", json.dumps({"dev": s.ingest_token})
            ),
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
            # /docs, /redoc and /openapi.json: off by default (production), on here.
            "HTTP_DOCS_ENABLED": os.environ.get("HTTP_DOCS_ENABLED", "true"),
        }
        prepare(env, partitions=s.partitions)
        self.services = list(
            start_all(
                env,
                ports={name: getattr(s, f"{name}_port") for name in SERVICES},
                metrics_ports={name: getattr(s, f"{name}_metrics_port") for name in SERVICES},
                log_dir=self.var / "log",
                ready_timeout=60,
            ).values()
        )

    def supervisor(self) -> Supervisor:
        """What `run` watches: each part it started, restarted if it dies."""
        supervisor = Supervisor(say=_say)
        if self.broker is not None:
            broker = self.broker
            supervisor.watch(
                "broker",
                broker,
                after_restart=lambda: create_topics(
                    broker.bootstrap_servers, partitions=self.settings.partitions
                ),
            )
        if self.postgres is not None:
            supervisor.watch("postgres", self.postgres)
        for service in self.services:
            supervisor.watch(f"{service.name} (log: {service.log_path})", service)
        return supervisor

    def describe(self) -> str:
        s = self.settings
        lines = ["", "npsloop is running:"]
        console = next((svc for svc in self.services if svc.name == "console"), None)
        if console is not None:
            lines.append(f"  console   {console.url}/cases   (sign in as a dev person below)")
        for svc in self.services:
            docs = "" if svc.name == "console" else f"docs: {svc.url}/docs, "
            lines.append(f"  {svc.name:<9} {svc.url}   ({docs}log: {svc.log_path})")
            lines.append(f"  {'':<9} metrics: {svc.metrics_url}")
        broker = (
            self.broker.bootstrap_servers if self.broker else os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        )
        if isinstance(self.broker, ApacheKafka):
            broker += f"   (Apache Kafka, data in {self.broker.data_dir})"
        lines.append(f"  broker    {broker}")
        lines.append(f"  database  {self.postgres.url if self.postgres else '(DATABASE_URL)'}")
        if self.mail:
            lines.append(f"  smtp sink 127.0.0.1:{s.smtp_port} -> {self.mail.directory}/*.eml")
        if self.idp:
            lines.append(f"  sign-in   {self.idp.issuer}   (dev OpenID Connect provider)")
            lines.append(
                "            people: " + ", ".join(f"{u.email} ({u.role})" for u in DEV_USERS)
            )
            lines.append(
                "            programs (client credentials): "
                + ", ".join(f"{c.client_id}:{c.secret} ({c.role})" for c in DEV_CLIENTS)
            )
        lines += [
            "",
            "Try it:",
            f"  curl -X POST http://127.0.0.1:{s.ingest_port}/v1/responses \\",
            f"    -H 'Authorization: Bearer {s.ingest_token}' \\",
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"response_id":"r-1","survey_id":"s-1","score":3,"comment":"Too slow",'
            '"responded_at":"\'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"\'",'
            '"customer":{"id":"c-1","email":"ada@example.com"}}\'',
            f"  curl 'http://127.0.0.1:{s.followup_port}/v1/cases?customer_id=c-1' \\",
            '    -H "Authorization: Bearer $(make -s token USER=alex@example.com)"',
            f"  ls {self.var / 'mail'}",
            "",
        ]
        return "\n".join(lines)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        for part in (self.idp, self.mail, self.postgres, self.broker):
            if part is not None:
                part.stop()


def _run(settings: DevStackSettings, *, ready_file: Path | None = None) -> int:
    stack = DevStack(settings)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
        _say(stack.describe())
        if ready_file is not None:
            ready_file.write_text(str(os.getpid()))
        _say("Press Ctrl-C to stop.")
        supervisor = stack.supervisor()
        while not stopping.wait(1.0):
            supervisor.check()
    except Exception as exc:
        _say(f"npsloop failed to start: {exc}")
        return 1
    finally:
        _say("Stopping npsloop…")
        stack.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0


def _up(settings: DevStackSettings) -> int:
    var = settings.var_dir.resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    pid_file = var / "devstack.pid"
    if pid_file.exists():
        _say(f"npsloop seems to be up already (pid {pid_file.read_text()}); `make down` first.")
        return 1
    log_path = var / "log" / "devstack.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "nps_kit.devstack", "run", "--ready-file", str(pid_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if pid_file.exists():
            text = log_path.read_text()
            start = text.rfind("npsloop is running:")
            _say(text[start : text.find("Press Ctrl-C", start)])
            _say("`make down` stops it.")
            return 0
        if process.poll() is not None:
            _say(f"npsloop failed to start; see {log_path}:\n{log_path.read_text()[-4000:]}")
            return 1
        time.sleep(0.3)
    process.terminate()
    _say(f"npsloop did not become ready in time; see {log_path}")
    return 1


def _down(settings: DevStackSettings) -> int:
    pid_file = settings.var_dir.resolve() / "devstack.pid"
    if not pid_file.exists():
        _say("npsloop is not up.")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and pid_file.exists():
        time.sleep(0.3)
    _say("npsloop stopped.")
    return 0


def session_key(path: Path) -> str:
    """The console's key for the tokens it keeps, made once and kept in `path` (0600), so
    that people stay signed in across restarts of the dev stack."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(Fernet.generate_key().decode())
    tmp.rename(path)
    return path.read_text().strip()


def _key_file(settings: DevStackSettings) -> Path:
    return settings.var_dir.resolve() / "idp" / "signing-key.pem"


def _token(
    settings: DevStackSettings, *, user: str | None, role: str | None, client: str | None
) -> int:
    """Print one access token of the dev identity provider, and nothing else."""
    provider = DevIdentityProvider(
        issuer=os.environ.get("AUTH_ISSUER", f"http://127.0.0.1:{settings.idp_port}"),
        key_file=_key_file(settings),
    )
    try:
        if client:
            token = provider.program_token(client)
        else:
            token = provider.person_token(user or "", role=role or None)
    except ValueError as exc:
        sys.stderr.write(f"make token: {exc}\n")
        return 2
    sys.stdout.write(f"{token}\n")
    return 0


def _idp(*, host: str, port: int, issuer: str, key_file: Path) -> int:
    """The provider served by uvicorn in this process until it is stopped (SIGTERM)."""
    provider = DevIdentityProvider(issuer=issuer, key_file=key_file)
    _say(f"dev identity provider {issuer} on {host}:{port}")
    uvicorn.run(provider.app(), host=host, port=port, log_level="warning", lifespan="off")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m nps_kit.devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything in the foreground")
    run.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    sub.add_parser("up", help="start everything in the background")
    sub.add_parser("down", help="stop what `up` started")
    token = sub.add_parser("token", help="print an access token of the dev identity provider")
    token.add_argument("--user", help="a person's email address (a dev user, or any with --role)")
    token.add_argument("--role", choices=["viewer", "agent", "lead", "admin"], default=None)
    token.add_argument("--client", help="a program's client id (client credentials)")
    idp = sub.add_parser(
        "idp", help="serve the dev identity provider alone, in the foreground (docker compose)"
    )
    idp.add_argument("--host", default="127.0.0.1")
    idp.add_argument("--port", type=int, default=8010)
    idp.add_argument("--issuer", help="its issuer URL (default http://<host>:<port>)")
    idp.add_argument("--key-file", type=Path, help="its signing key (PEM), made when missing")
    args = parser.parse_args()
    settings = DevStackSettings()
    if args.command == "idp":
        raise SystemExit(
            _idp(
                host=args.host,
                port=args.port,
                issuer=args.issuer or f"http://{args.host}:{args.port}",
                key_file=args.key_file or _key_file(settings),
            )
        )
    if args.command == "token":
        raise SystemExit(_token(settings, user=args.user, role=args.role, client=args.client))
    if args.command == "run":
        raise SystemExit(_run(settings, ready_file=args.ready_file))
    if args.command == "up":
        raise SystemExit(_up(settings))
    raise SystemExit(_down(settings))


if __name__ == "__main__":
    main()
