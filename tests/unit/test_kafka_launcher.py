"""The Apache Kafka launcher's configuration (nps_kit.devstack.kafka), without starting a
JVM: one node is its own quorum; three nodes share one quorum, one cluster id and replicate
everything three times."""

import base64
from pathlib import Path

from nps_kit.devstack import ApacheKafka, ApacheKafkaCluster
from nps_kit.devstack.kafka import cluster_id


def test_a_single_node_is_broker_and_controller_of_its_own_quorum() -> None:
    node = ApacheKafka(
        port=9100, controller_port=9101, data_dir=Path("/d"), log_path=Path("/d/server.log")
    )
    props = node.properties()
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9101"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9100,CONTROLLER://127.0.0.1:9101"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9100"
    assert props["log.dirs"] == "/d/logs"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"


def test_a_node_behind_a_proxy_advertises_the_proxy() -> None:
    node = ApacheKafka(
        port=9100,
        controller_port=9101,
        data_dir=Path("/d"),
        log_path=Path("/d/server.log"),
        advertised="127.0.0.1:9200",
    )
    assert node.properties()["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9200"


def test_three_nodes_form_one_quorum_and_replicate_three_times(tmp_path: Path) -> None:
    cluster = ApacheKafkaCluster(base_dir=tmp_path)
    props = [node.properties() for node in cluster.nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert len({p["controller.quorum.voters"] for p in props}) == 1
    assert props[0]["controller.quorum.voters"].count("@127.0.0.1:") == 3
    assert len({node.cluster for node in cluster.nodes}) == 1
    assert len({node.port for node in cluster.nodes}) == 3
    assert len({p["log.dirs"] for p in props}) == 3
    for p in props:
        assert p["default.replication.factor"] == "3"
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
    assert cluster.bootstrap_servers.count(",") == 2


def test_a_cluster_id_is_sixteen_bytes_in_url_safe_base64() -> None:
    for _ in range(200):
        text = cluster_id()
        assert len(text) == 22
        assert not text.startswith("-")
        assert len(base64.urlsafe_b64decode(text + "==")) == 16
