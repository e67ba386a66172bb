"""Apache Kafka for the dev stack and the tests: the broker's jars from Maven Central
(`tools/kafka/pom.xml`, fetched by Maven into `tools/kafka/target/lib` the first time), run
by the machine's Java (17 or later) in KRaft mode.

`ApacheKafka` is one node that is both broker and controller: the same interface as the
Tansu `EmbeddedBroker` (start, stop, restart, alive, pause, resume, pid,
bootstrap_servers), so the dev stack and the tests use either. `ApacheKafkaCluster` is
three such nodes forming one quorum (each a voter and a broker), for failover tests: a node
can be killed, frozen or restarted while the other two keep the cluster going.

Unlike Tansu's memory storage, the data is on disk under `data_dir`: a restarted node has
its topics, records and committed offsets. The storage is formatted once (KRaft's
`StorageTool`, a generated cluster id); later starts reuse it.

Measured on the 2-core machine (load average ~3): a fresh node, formatting included, serves
~2.7 s after `start()` once the class-data sharing archive of Kafka's classes exists (the
first node ever started writes it as it stops), 7–11 s without it; ~320 MB resident.
"""

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from nps_kit.devstack.process import ServerProcess, free_port, port_open, stop_process
from nps_kit.settings import KafkaSettings

#: The Maven project that fetches Kafka; the repository's, when the kit is installed from it.
TOOLS_DIR = Path(__file__).resolve().parents[5] / "tools" / "kafka"
#: What a node logs once it is registered with the controllers and unfenced: it serves.
STARTED = b"Kafka Server started"


def java() -> str:
    """`$JAVA_HOME/bin/java`, else `java` on the PATH (Kafka 4 brokers need Java 17+)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise RuntimeError("Apache Kafka needs Java 17 or later: no `java` found (JAVA_HOME)")
    return found


def install(tools_dir: Path = TOOLS_DIR) -> Path:
    """The folder of Kafka's jars, fetched by Maven (`make kafka`) unless they are there
    already and newer than the pom: offline once fetched. Safe to call from several
    processes at once (a file lock)."""
    lib = tools_dir / "target" / "lib"
    stamp = lib / ".installed"
    pom = tools_dir / "pom.xml"
    if not pom.exists():
        raise RuntimeError(f"{pom} is missing: Apache Kafka is installed from the repository")

    def fresh() -> bool:
        return stamp.exists() and stamp.stat().st_mtime >= pom.stat().st_mtime

    if fresh():
        return lib
    (tools_dir / "target").mkdir(exist_ok=True)
    with (tools_dir / "target" / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not fresh():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise RuntimeError("Apache Kafka is fetched with Maven: no `mvn` on the PATH")
            shutil.rmtree(lib, ignore_errors=True)
            shutil.rmtree(tools_dir / "target" / "cds", ignore_errors=True)  # for the old jars
            subprocess.run(  # noqa: S603 - Maven on our own pom
                [mvn, "-B", "-q", "-Dstyle.color=never", "package"], cwd=tools_dir, check=True
            )
            stamp.touch()
    return lib


def class_archive(tools_dir: Path = TOOLS_DIR) -> Path:
    """Where the class-data sharing archive of Kafka's classes is kept, for this Java."""
    binary = Path(java()).resolve()
    key = hashlib.sha256(f"{binary}:{binary.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return tools_dir / "target" / "cds" / f"kafka-{key}.jsa"


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as
    `kafka-storage random-uuid` prints (never starting with '-', which reads as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _log4j2(log_path: Path) -> str:
    return "\n".join(
        [
            "status = warn",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {log_path}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = file",
            # One line per partition and replica at every leader change: noise here.
            "logger.state.name = state.change.logger",
            "logger.state.level = WARN",
            "",
        ]
    )


class ApacheKafka(ServerProcess):
    """One Apache Kafka node, broker and controller in one JVM, on loopback.

    `quorum` maps every controller's node id to its controller port (default: this node
    alone); `replication` is the replication factor of Kafka's internal topics and the
    default of new topics (1 alone, 3 in a cluster of three). `cluster` is the cluster id the
    storage is formatted with when it is not yet. `advertised`: the address clients are
    told to connect to, when it is not the node's own (a TLS-terminating proxy in front of
    it, in the TLS tests). A restarted node keeps its data."""

    def __init__(
        self,
        *,
        port: int,
        data_dir: Path,
        log_path: Path,
        controller_port: int | None = None,
        node_id: int = 1,
        quorum: Mapping[int, int] | None = None,
        replication: int = 1,
        cluster: str | None = None,
        heap: str = "512m",
        advertised: str | None = None,
        tools_dir: Path = TOOLS_DIR,
    ) -> None:
        self.port = port
        self.advertised = advertised
        self.data_dir = data_dir
        self.log_path = log_path
        self.node_id = node_id
        self.controller_port = controller_port or free_port()
        self.quorum = dict(quorum) if quorum else {node_id: self.controller_port}
        self.replication = replication
        self.cluster = cluster
        self.heap = heap
        self.tools_dir = tools_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._dumping: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    def properties(self) -> dict[str, str]:
        """The node's server.properties."""
        min_isr = str(min(2, self.replication))
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            # A static quorum: the voters are known before the start, so formatting needs
            # neither --standalone nor --initial-controllers, for one node or three.
            "controller.quorum.voters": ",".join(
                f"{node}@127.0.0.1:{port}" for node, port in sorted(self.quorum.items())
            ),
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.advertised or self.bootstrap_servers}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "3",
            "default.replication.factor": str(self.replication),
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": str(self.replication),
            "transaction.state.log.replication.factor": str(self.replication),
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": str(self.replication),
            "share.coordinator.state.topic.min.isr": min_isr,
            # The first consumer of a group gets its partitions at once, not after 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created by the dev stack and the services (ensure_topics), never by
            # a producer's or a consumer's first request for a name with a typo.
            "auto.create.topics.enable": "false",
            # A node restarted after a SIGKILL cannot register its broker again before the
            # controller ends the dead one's session ("DUPLICATE_BROKER_REGISTRATION"): 9 s
            # by default; 4 s here, which also fences a dead node of a cluster sooner.
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "4000",
            # Two cores shared with everything else: few threads.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "log.cleaner.threads": "1",
        }

    def format(self) -> None:
        """Format the storage unless it is already (KRaft's `StorageTool`)."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        subprocess.run(  # noqa: S603 - Java on Kafka's own tool
            [
                *self._java(heap="256m", write_archive=False),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                self.cluster or cluster_id(),
                "--config",
                str(self.config_path),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            check=True,
        )

    def _java(self, *, heap: str, write_archive: bool = True) -> list[str]:
        """The JVM's command line. The classes come from the class-data sharing archive when
        there is one (a node then serves in ~1.8 s instead of ~5 s, measured at load average
        2.9); otherwise a node (`write_archive`) writes it as it stops (that first start is
        slower, ~9.5 s, and its stop takes ~10 s more)."""
        lib = install(self.tools_dir)
        sharing: list[str] = []
        path = class_archive(self.tools_dir)
        if path.exists():
            sharing = [f"-XX:SharedArchiveFile={path}"]
        elif write_archive:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dumping = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}.part")
            sharing = [f"-XX:ArchiveClassesAtExit={self._dumping}"]
        return [
            java(),
            *sharing,
            f"-Xmx{heap}",
            "-Xms64m",
            # One GC thread, no concurrent marking: a small heap on two busy cores.
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
        ]

    def spawn(self) -> None:
        """Start the JVM and return at once (a cluster's nodes must start together: none
        is up before the quorum is); `wait_started` waits for it."""
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is in use: cannot start Apache Kafka there")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "".join(f"{key}={value}\n" for key, value in self.properties().items())
        )
        (self.data_dir / "log4j2.properties").write_text(_log4j2(self.log_path))
        self._log = self.log_path.open("ab")
        self._log_start = self.log_path.stat().st_size
        self.format()
        self._process = subprocess.Popen(  # noqa: S603 - Java on Kafka's own main class
            [*self._java(heap=self.heap), "kafka.Kafka", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_started(self, *, timeout: float = 60) -> None:
        """Return once the node logged that it serves (registered and unfenced)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                if STARTED in log.read():
                    return
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise RuntimeError(
                    f"Apache Kafka node {self.node_id} exited with code {code} before serving"
                    f" (see {self.log_path})"
                )
            time.sleep(0.1)
        raise TimeoutError(
            f"Apache Kafka node {self.node_id} did not serve within {timeout:.0f}s"
            f" (see {self.log_path})"
        )

    def start(self) -> None:
        self.spawn()
        try:
            self.wait_started()
        except Exception:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL: the crash a failover test wants to survive."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self._close_log()
        self._keep_archive()

    def terminate(self) -> None:
        """Ask it to shut down (SIGTERM) without waiting: `stop` waits."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a frozen JVM cannot shut down
            self._process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM: a controlled shutdown (leadership moved away first in a cluster)."""
        self.terminate()
        stop_process(self._process, sig=signal.SIGTERM, timeout=30)
        self._process = None
        self._close_log()
        self._keep_archive()

    def _keep_archive(self) -> None:
        """Keep the archive the JVM wrote as it exited (a renaming: any number of nodes may
        write one at once, each is whole); none is written after a SIGKILL."""
        if self._dumping is None:
            return
        if self._dumping.exists():
            self._dumping.replace(class_archive(self.tools_dir))
        with contextlib.suppress(FileNotFoundError):
            self._dumping.unlink()
        self._dumping = None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class ApacheKafkaCluster:
    """Three Apache Kafka nodes, each a controller (one quorum of three voters) and a
    broker, on loopback ports, with data and logs under `base_dir/node-<id>/`. Internal
    topics and new topics that do not say otherwise are replicated three times with
    `min.insync.replicas=2`: one node can be lost with no acknowledged record lost."""

    def __init__(self, *, base_dir: Path, size: int = 3, heap: str = "384m") -> None:
        self.base_dir = base_dir
        controllers = {node: free_port() for node in range(1, size + 1)}
        cluster = cluster_id()
        self.nodes = [
            ApacheKafka(
                port=free_port(),
                controller_port=controllers[node],
                node_id=node,
                quorum=controllers,
                replication=min(3, size),
                cluster=cluster,
                data_dir=base_dir / f"node-{node}",
                log_path=base_dir / f"node-{node}" / "server.log",
                heap=heap,
            )
            for node in controllers
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def settings(self) -> KafkaSettings:
        """How clients use this cluster: idempotent producers, and topics created with three
        replicas and `min.insync.replicas=2` (as deploy/k8s's KafkaTopics declare; fewer
        replicas when the cluster is smaller)."""
        replication = self.nodes[0].replication
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            enable_idempotence=True,
            topic_replication_factor=replication,
            topic_min_insync_replicas=min(2, replication),
        )

    def env(self) -> dict[str, str]:
        """The same, as the environment of a service process (`KAFKA_*`)."""
        settings = self.settings()
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "true",
            "KAFKA_TOPIC_REPLICATION_FACTOR": str(settings.topic_replication_factor),
            "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": str(settings.topic_min_insync_replicas),
        }

    @property
    def pid(self) -> int | None:
        """The first node's process id (each node's: `nodes[i].pid`)."""
        return self.nodes[0].pid

    def start(self, *, timeout: float = 90) -> None:
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_started(timeout=timeout)
        except Exception:
            self.stop()
            raise

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def restart(self) -> None:
        """Start again every node that is not running (the others keep serving)."""
        down = [node for node in self.nodes if not node.alive()]
        for node in down:
            node.stop()
            node.spawn()
        for node in down:
            node.wait_started()

    def pause(self) -> None:
        for node in self.nodes:
            node.pause()

    def resume(self) -> None:
        for node in self.nodes:
            node.resume()

    def stop(self) -> None:
        # All at once: a node told to stop after the others are gone would wait for a
        # quorum that no longer exists before it gives up.
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.stop()
