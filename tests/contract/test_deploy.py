"""The deploy skeleton is valid and keeps its promises, checked offline (no network, no Docker).

- `docker-compose.yml` is valid against the Compose Specification's JSON Schema, vendored as
  `tests/contract/schemas/compose-spec.json`: copied unchanged from the repository
  compose-spec/compose-spec, file `schema/compose-spec.json` at commit
  00655e2222608fa6eaecdf12ac5195889ca2244a (Apache-2.0); its sha256 is pinned below. To update,
  copy the file from a newer commit and update the commit and the sha256 here.
- The kustomize base and overlays render, and every rendered object is valid against the
  Kubernetes OpenAPI schemas of each version in `K8S_VERSIONS`, in strict mode (an unknown or
  misspelt field is an error), with the schemas the `kubernetes-validate` package ships.
- kustomize itself is a Go program that neither PyPI nor npm ships, and some machines of this
  project have no kubectl (which embeds it). So the manifests are rendered by `render()` below, a
  small renderer of exactly the kustomize features the kustomizations use, which refuses any
  other; where `kustomize` or `kubectl` is installed, a test checks that it renders the same
  objects as the real thing.
- The invariants ops rely on: probes, non-root, read-only root filesystem, resources, service
  accounts, one image everywhere, secrets only from `npsloop-secrets`, and environment variables
  that the services' settings really read (a misspelt one would be ignored silently).
- The Dockerfile, parsed with BuildKit's own parser (the `dockerfile` package): multi-stage,
  installs from uv.lock, runs as a numeric non-root user, the service chosen by argument.
"""

import base64
import copy
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic_settings import BaseSettings
from referencing import Registry

from nps_events.topics import ALL_TOPICS, dlq
from nps_followup.config import FollowupSettings
from nps_ingest.config import IngestSettings
from nps_notify.config import NotifySettings
from nps_scoring.config import ScoringSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ("base", "overlays/local")

COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
COMPOSE_SCHEMA_SHA256 = "bc50c2d79102aed8df21b3a13e56c9396c7a06da6cff5ce37629f2ee7eb41735"

#: The oldest Kubernetes minor we deploy to, and the newest whose schemas are installed.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "scoring": ScoringSettings,
    "followup": FollowupSettings,
    "notify": NotifySettings,
}
SERVICES = tuple(SETTINGS)
#: Services with a schema of their own, in the order the migrations run.
MIGRATED = ("scoring", "followup", "notify")
SECRET_KEYS = {"DATABASE_URL", "INGEST_API_TOKENS", "SMTP_PASSWORD"}
#: In a container a service must listen on every interface, not on its default 127.0.0.1.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
#: The one writable directory of a read-only root filesystem.
TMP = "/tmp"  # noqa: S108


def _port(service: str) -> int:
    default = SETTINGS[service].model_fields["port"].default
    assert isinstance(default, int)
    return default


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
    *parents, last = path.split("/")
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
        del node[last]

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
    assert settings.kafka.enable_idempotence is True


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


class UnsupportedKustomizationError(Exception):
    """The kustomization uses a feature `render` does not implement."""


KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "replicas",
    "generatorOptions",
    "configMapGenerator",
    "secretGenerator",
}
#: Kinds whose namespacing and references `render` gets right: namespaced, and referring to
#: others only by name within the namespace.
RENDERABLE_KINDS = {"ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment", "Job"}


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kustomize build directory` outputs, for the subset of kustomize used here."""
    kustomization: dict[str, Any] = yaml.safe_load(
        (directory / "kustomization.yaml").read_text(encoding="utf-8")
    )
    unsupported = set(kustomization) - KUSTOMIZATION_FIELDS
    if unsupported:
        raise UnsupportedKustomizationError(f"{directory}: {sorted(unsupported)}")

    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [o for o in yaml.safe_load_all(path.read_text(encoding="utf-8")) if o]
    for obj in objects:
        if obj["kind"] not in RENDERABLE_KINDS:
            raise UnsupportedKustomizationError(f"kind {obj['kind']}")

    _generate(kustomization, objects)
    namespace = kustomization.get("namespace")
    for obj in objects:
        if namespace:
            obj["metadata"]["namespace"] = namespace
        for container in _containers(obj):
            container["image"] = _retag(container["image"], kustomization.get("images", []))
    for replicas in kustomization.get("replicas", []):
        [deployment] = [o for o in objects if _is(o, "Deployment", replicas["name"])]
        deployment["spec"]["replicas"] = replicas["count"]
    return objects


def _generate(kustomization: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    generators = [("ConfigMap", g) for g in kustomization.get("configMapGenerator", [])] + [
        ("Secret", g) for g in kustomization.get("secretGenerator", [])
    ]
    if not generators:
        return
    # With the hash suffix, kustomize renames the object and rewrites every reference to it.
    if kustomization.get("generatorOptions") != {"disableNameSuffixHash": True}:
        raise UnsupportedKustomizationError("generated names with a hash suffix")
    for kind, generator in generators:
        if set(generator) - {"name", "behavior", "literals", "type"}:
            raise UnsupportedKustomizationError(f"generator fields {sorted(generator)}")
        data = dict(_literal(item) for item in generator.get("literals", []))
        if kind == "Secret":
            data = {key: _kustomize_base64(value) for key, value in data.items()}
        behavior = generator.get("behavior", "create")
        existing = [o for o in objects if _is(o, kind, generator["name"])]
        if behavior == "create" and not existing:
            generated: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": generator["name"]},
                "data": data,
            }
            if kind == "Secret":
                generated["type"] = generator.get("type", "Opaque")
            objects.append(generated)
        elif behavior == "merge" and len(existing) == 1:
            existing[0]["data"] = {**existing[0].get("data", {}), **data}
        else:
            raise UnsupportedKustomizationError(f"{behavior} of {kind} {generator['name']}")


def _kustomize_base64(value: str) -> str:
    """Base64 as kustomize writes it: past 70 characters, in lines of 70, each ending in \\n."""
    encoded = base64.b64encode(value.encode()).decode()
    if len(encoded) < 70:
        return encoded
    return "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))


def _literal(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def _retag(image: str, rules: list[dict[str, str]]) -> str:
    if "@" in image:
        raise UnsupportedKustomizationError(f"digest in {image}")
    # A tag is a colon in the last path segment (a colon before it is a registry's port).
    has_tag = ":" in image.rsplit("/", maxsplit=1)[-1]
    name, _, tag = image.rpartition(":") if has_tag else (image, "", "")
    for rule in rules:
        if set(rule) - {"name", "newName", "newTag"}:
            raise UnsupportedKustomizationError(f"image fields {sorted(rule)}")
        if rule["name"] == name:
            name, tag = rule.get("newName", name), str(rule.get("newTag", tag))
    return f"{name}:{tag}" if tag else name


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


def _real_kustomize(directory: Path) -> list[dict[str, Any]] | None:
    """`kustomize build`, or `kubectl kustomize` (the same code, built in), if installed."""
    if kustomize := shutil.which("kustomize"):
        command = [kustomize, "build", str(directory)]
    elif kubectl := shutil.which("kubectl"):
        command = [kubectl, "kustomize", str(directory)]
    else:
        return None
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    return [o for o in yaml.safe_load_all(out.stdout) if o]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    name: str = request.param
    return name, render(K8S / name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renderer_agrees_with_kustomize(name: str) -> None:
    real = _real_kustomize(K8S / name)
    if real is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    ours = render(K8S / name)
    assert {_key(o): o for o in ours} == {_key(o): o for o in real}


@pytest.mark.parametrize(
    "kustomization",
    [
        {"resources": [], "commonLabels": {"team": "cx"}},
        {"resources": [], "configMapGenerator": [{"name": "x", "literals": ["A=1"]}]},
        {
            "resources": [],
            "generatorOptions": {"disableNameSuffixHash": True},
            "secretGenerator": [{"name": "x", "files": ["token.txt"]}],
        },
    ],
)
def test_renderer_refuses_what_it_does_not_implement(
    tmp_path: Path, kustomization: dict[str, Any]
) -> None:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(UnsupportedKustomizationError):
        render(tmp_path)


# --- Kubernetes schemas --------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(
    rendered: tuple[str, list[dict[str, Any]]], version: str
) -> None:
    _, objects = rendered
    assert objects
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.path))
            pytest.fail(f"{_key(obj)} is not valid Kubernetes {version}: {path}: {error.message}")


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


def deployment_problems(deployment: dict[str, Any], service_accounts: set[str]) -> list[str]:
    """What a Deployment lacks of what ops rely on; empty when it is fit to run."""
    spec = deployment["spec"]["template"]["spec"]
    problems = _pod_problems(spec, service_accounts)
    if spec.get("terminationGracePeriodSeconds") != 30:
        problems.append("grace period is not 30 s")
    [container] = spec["containers"]
    problems += _probe_problems(container)
    [port] = container.get("ports", [{}])
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port.get("containerPort")),
        "prometheus.io/path": "/metrics",
    }
    if any(annotations.get(key) != value for key, value in scrape.items()):
        problems.append("no Prometheus scrape annotations for its port")
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
        ("not scraped", _drop("spec/template/metadata/annotations")),
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


def test_every_container_runs_the_one_image(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    images = {c["image"] for o in objects for c in _containers(o)}
    assert images == {"npsloop:0.1.0" if name == "base" else "npsloop:dev"}


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
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert svc["spec"]["ports"][0]["port"] == port
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        settings = settings_from(service, {**config, **plain})
        assert (settings.host, settings.port) == (ALL_INTERFACES, port)


def _config_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    [config] = [o for o in objects if _is(o, "ConfigMap", "npsloop-config")]
    data: dict[str, str] = config["data"]
    return data


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
    assert required == {"DATABASE_URL", "INGEST_API_TOKENS"} <= set(values)
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
