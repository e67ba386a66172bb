"""Custom resources checked against their operators' own CustomResourceDefinitions, offline.

The CRDs are the upstream files, vendored unchanged in tests/contract/crds (where each came from
and at which version: tests/contract/crds/README.md). A custom resource is checked as an API
server with strict field validation (`kubectl apply --validate=strict`, the default) checks it:

- its `apiVersion` names the CRD's group and a version the CRD **serves** (a removed version,
  such as Strimzi's `kafka.strimzi.io/v1beta2` since Strimzi 1.0, is refused; so is one the CRD
  marks deprecated), and its `kind` is the CRD's;
- the object against that version's `openAPIV3Schema`, read as Kubernetes reads a structural
  schema: an object's fields are only those it declares (an unknown or misspelt field is an
  error) unless it says `x-kubernetes-preserve-unknown-fields` or `additionalProperties`;
  `nullable` admits null; `x-kubernetes-int-or-string` admits an integer or a string;
  `x-kubernetes-embedded-resource` admits apiVersion, kind and metadata;
- `metadata` as the API server checks every object's: against ObjectMeta (kubernetes-validate).

What is not evaluated: the CEL rules (`x-kubernetes-validations`); `UNEVALUATED_RULES` lists
each one the vendored CRDs carry, so a new rule in an updated CRD fails a test until someone
reads it and covers it (tests/contract/test_deploy.py says where each is covered).
"""

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft4Validator
from referencing import Registry

CRDS = Path(__file__).resolve().parents[1] / "contract" / "crds"

#: The CEL rules of the vendored CRDs, by (kind, version): not evaluated here.
UNEVALUATED_RULES: dict[tuple[str, str], set[str]] = {
    ("ScaledObject", "v1alpha1"): {
        "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount)"
        " ? self.maxReplicaCount : 100)"
    },
}


@dataclass(frozen=True)
class Crd:
    """One CustomResourceDefinition: its group, kind, and per version whether it is served."""

    group: str
    kind: str
    served: frozenset[str]
    deprecated: frozenset[str]
    schemas: dict[str, dict[str, Any]]


@functools.cache
def crds() -> dict[tuple[str, str], Crd]:
    """Every vendored CRD, by (group, kind)."""
    found: dict[tuple[str, str], Crd] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            versions = spec["versions"]
            crd = Crd(
                group=spec["group"],
                kind=spec["names"]["kind"],
                served=frozenset(v["name"] for v in versions if v.get("served")),
                deprecated=frozenset(v["name"] for v in versions if v.get("deprecated")),
                schemas={v["name"]: v["schema"]["openAPIV3Schema"] for v in versions},
            )
            found[crd.group, crd.kind] = crd
    return found


def cel_rules(schema: Any) -> set[str]:
    """Every `x-kubernetes-validations` rule anywhere in `schema`."""
    rules: set[str] = set()
    if isinstance(schema, dict):
        rules |= {v["rule"] for v in schema.get("x-kubernetes-validations", [])}
        for value in schema.values():
            rules |= cel_rules(value)
    elif isinstance(schema, list):
        for item in schema:
            rules |= cel_rules(item)
    return rules


#: Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_SCHEMA = {"items", "additionalProperties", "not"}
_SCHEMAS = {"anyOf", "allOf", "oneOf"}
_NAMED_SCHEMAS = {"properties", "patternProperties"}


def _python_pattern(pattern: str) -> str:
    """A Go (RE2) pattern as Python's `re` reads it the same: RE2 takes a flag group such as
    `(?i)` anywhere, Python only at the start (prometheus-operator writes `^(?i)(abort|warn)?$`)."""
    flags = re.findall(r"\(\?[a-zA-Z]+\)", pattern)
    return "".join(flags) + re.sub(r"\(\?[a-zA-Z]+\)", "", pattern) if flags else pattern


def _keyword(key: str, value: Any) -> Any:
    if key in _SCHEMA and isinstance(value, dict):
        return _as_json_schema(value)
    if key in _SCHEMAS:
        return [_as_json_schema(item) for item in value]
    if key in _NAMED_SCHEMAS:
        return {name: _as_json_schema(item) for name, item in value.items()}
    if key == "pattern":
        return _python_pattern(value)
    return value


def _as_json_schema(node: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
    """A structural OpenAPI v3 schema node as the JSON Schema (draft 4) of what Kubernetes
    admits under strict field validation."""
    schema = {
        key: _keyword(key, value)
        for key, value in node.items()
        if not key.startswith("x-kubernetes-") and key != "nullable"
    }
    if node.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if node.get("type") == "object":
        properties = schema.setdefault("properties", {})
        if node.get("x-kubernetes-embedded-resource"):
            properties.setdefault("apiVersion", {"type": "string"})
            properties.setdefault("kind", {"type": "string"})
            properties.setdefault("metadata", {"type": "object"})
        if root:
            # ObjectMeta is checked on its own (metadata_errors), as the API server does.
            properties["metadata"] = {"type": "object"}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    return schema


@functools.cache
def _validator(group: str, kind: str, version: str) -> Draft4Validator:
    schema = _as_json_schema(crds()[group, kind].schemas[version], root=True)
    Draft4Validator.check_schema(schema)
    # No $ref in a structural schema; an empty Registry retrieves nothing, so nothing is fetched.
    return Draft4Validator(schema, registry=Registry())


def metadata_errors(obj: dict[str, Any], k8s_version: str) -> list[str]:
    """`obj`'s metadata against ObjectMeta, strict (carried by a ConfigMap, which adds nothing)."""
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    try:
        kubernetes_validate.validate(carrier, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []


def custom_resource_errors(obj: dict[str, Any], k8s_version: str) -> list[str]:
    """What an API server running the vendored CRDs would refuse in `obj`; empty if nothing."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    crd = crds().get((group, kind))
    if crd is None:
        return [f"no CustomResourceDefinition of {group} {kind} in {CRDS}"]
    if version not in crd.served:
        served = ", ".join(f"{group}/{v}" for v in sorted(crd.served))
        return [f"{group}/{version} {kind} is not served by its CRD (served: {served})"]
    if version in crd.deprecated:
        return [f"{group}/{version} {kind} is deprecated by its CRD"]
    errors = metadata_errors(obj, k8s_version)
    errors += [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(group, kind, version).iter_errors(obj)
    ]
    return errors
