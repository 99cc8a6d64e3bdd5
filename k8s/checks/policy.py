#!/usr/bin/env python3
"""Checks on rendered Chorus manifests that a JSON schema cannot express.

A schema looks at one object at a time. These rules look at what makes the install work: names
and selectors that point at something real, probes that hit the server's endpoints, a grace
period that covers the shutdown, pods that pass the "restricted" Pod Security Standard, and a
Dockerfile that agrees with the manifests.

    policy.py manifests RENDERED.yaml [--external-secret NAME]... [--production]
    policy.py dockerfile Dockerfile RENDERED.yaml
    policy.py dashboard dashboard.json
    policy.py custom-resources RENDERED.yaml   (prints the non-built-in objects as a JSON array)

Prints one line per problem and exits 1 if there is any; exits 0 silently otherwise.
Needs PyYAML (installed with kubernetes-validate by scripts/validate-k8s.sh).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

# The Chorus server's own Deployment, the one the server-specific rules apply to.
SERVER_DEPLOYMENT = "chorus"
READINESS_PATH = "/readyz"
LIVENESS_PATH = "/healthz"
# The server's --shutdown-timeout default: the longest it spends after SIGTERM flushing rooms and
# closing sockets when CHORUS_SHUTDOWN_TIMEOUT is not set.
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10.0
# Time for the process to exit after its shutdown timeout; the grace period must cover the
# preStop sleep, the drain delay (CHORUS_DRAIN_DELAY, 0 unless set), the shutdown timeout and
# this, or the kubelet kills the server mid-flush.
EXIT_MARGIN_SECONDS = 5
# Prefix of the placeholder secret values in the base; production must render none of them.
DEV_SECRET_PREFIX = "insecure-"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@dataclass(frozen=True)
class Manifests:
    """The rendered objects, with lookups by kind and name."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]

    def find(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        for o in self.of_kind(kind):
            if meta(o).get("name") == name and ns(o) == namespace:
                return o
        return None

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") in WORKLOAD_KINDS]


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def ns(obj: dict[str, Any]) -> str:
    return meta(obj).get("namespace") or ""


def ident(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{meta(obj).get('name')}"


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    template = (workload.get("spec") or {}).get("template") or {}
    return template.get("spec") or {}


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    template = (workload.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plain_selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A Service's selector: a plain map; an empty one selects no pods (it means "manual")."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(text: str) -> float | None:
    """The humantime forms used in config, e.g. `30s`, `1m 30s`, `500ms`; None if unreadable."""
    parts = re.findall(r"(\d+)\s*([a-z]+)", text)
    if not parts or re.sub(r"[\d\sa-z]", "", text):
        return None
    total = 0.0
    for number, unit in parts:
        if unit not in DURATION_UNITS:
            return None
        total += int(number) * DURATION_UNITS[unit]
    return total


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    values = dict(secret.get("stringData") or {})
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(encoded).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            values[key] = ""
    return values


def config_values(config_map: dict[str, Any]) -> dict[str, str]:
    return dict(config_map.get("data") or {})


# --- rules on each pod template ------------------------------------------------------------------


def check_pod_security(m: Manifests) -> Iterator[str]:
    """The "restricted" Pod Security Standard plus a read-only root filesystem."""
    for w in m.workloads():
        spec = pod_spec(w)
        pod_sc = spec.get("securityContext") or {}
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                yield f"{ident(w)}: {flag} is set"
        for volume in spec.get("volumes") or []:
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUME_TYPES:
                yield f"{ident(w)}: volume {volume.get('name')} uses {sorted(kinds)}"
        for c in containers(spec):
            where = f"{ident(w)} container {c.get('name')}"
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
                yield f"{where}: runAsNonRoot is not true"
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                yield f"{where}: runs as uid 0"
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                yield f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault"
            if sc.get("allowPrivilegeEscalation") is not False:
                yield f"{where}: allowPrivilegeEscalation is not false"
            if sc.get("privileged"):
                yield f"{where}: privileged"
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                yield f"{where}: capabilities do not drop ALL"
            if sc.get("readOnlyRootFilesystem") is not True:
                yield f"{where}: readOnlyRootFilesystem is not true"


def check_resources(m: Manifests) -> Iterator[str]:
    for w in m.workloads():
        for c in containers(pod_spec(w)):
            res = c.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (res.get(section) or {}):
                        yield f"{ident(w)} container {c.get('name')}: no {section}.{resource}"


def probe_port_ok(probe: dict[str, Any], container: dict[str, Any]) -> bool:
    action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
    if action is None:
        return True  # exec probes have no port
    port = action.get("port")
    declared = container.get("ports") or []
    if isinstance(port, str):
        return any(p.get("name") == port for p in declared)
    return any(p.get("containerPort") == port for p in declared)


QUANTITY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def parse_bytes(quantity: Any) -> int | None:
    """A Kubernetes byte quantity such as `512Mi` or `1G`; None if unreadable."""
    match = re.fullmatch(r"(\d+)([KMGT]i|[kMGT])?", str(quantity))
    if not match:
        return None
    return int(match.group(1)) * QUANTITY_SUFFIXES.get(match.group(2) or "", 1)


def check_scratch_space(m: Manifests) -> Iterator[str]:
    """Disk emptyDirs count against ephemeral-storage; filling past the limit evicts the pod."""
    for w in m.workloads():
        spec = pod_spec(w)
        disk = [v["emptyDir"] for v in spec.get("volumes") or [] if "emptyDir" in v]
        disk = [e for e in disk if (e or {}).get("medium") != "Memory"]
        if not disk:
            continue
        sizes = [parse_bytes((e or {}).get("sizeLimit")) for e in disk]
        if None in sizes:
            yield f"{ident(w)}: a disk emptyDir has no readable sizeLimit"
            continue
        limits = [
            parse_bytes(((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage"))
            for c in spec.get("containers") or []
        ]
        if None in limits:
            yield f"{ident(w)}: a container has no readable ephemeral-storage limit beside its emptyDir"
        elif sum(sizes) >= sum(limits):
            yield f"{ident(w)}: emptyDir sizeLimits fill the whole ephemeral-storage limit, leaving none for logs"


def check_probes(m: Manifests) -> Iterator[str]:
    for w in m.workloads():
        if w.get("kind") == "Job":
            continue
        for c in pod_spec(w).get("containers") or []:
            where = f"{ident(w)} container {c.get('name')}"
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if not probe:
                    yield f"{where}: no {kind}"
                elif not probe_port_ok(probe, c):
                    yield f"{where}: {kind} port is not a declared container port"


def check_images(m: Manifests) -> Iterator[str]:
    for w in m.workloads():
        for c in containers(pod_spec(w)):
            image = c.get("image") or ""
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in last or last.endswith(":latest"):
                yield f"{ident(w)} container {c.get('name')}: image {image!r} has no pinned tag"


# --- rules for the Chorus server -----------------------------------------------------------------


def server_env(m: Manifests, w: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The environment the server sees, as far as the rendered objects say."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            cm = m.find("ConfigMap", source["configMapRef"].get("name"), ns(w))
            env.update(config_values(cm) if cm else {})
        if "secretRef" in source:
            secret = m.find("Secret", source["secretRef"].get("name"), ns(w))
            env.update(secret_values(secret) if secret else {})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def check_server(m: Manifests) -> Iterator[str]:
    servers = [d for d in m.of_kind("Deployment") if meta(d).get("name") == SERVER_DEPLOYMENT]
    if len(servers) != 1:
        yield f"expected one Deployment/{SERVER_DEPLOYMENT}, found {len(servers)}"
        return
    d = servers[0]
    spec = pod_spec(d)
    chorus = [c for c in spec.get("containers") or [] if c.get("name") == "chorus"]
    if not chorus:
        yield f"{ident(d)}: no container named chorus"
        return
    c = chorus[0]
    where = f"{ident(d)} container chorus"

    readiness = (c.get("readinessProbe") or {}).get("httpGet") or {}
    liveness = (c.get("livenessProbe") or {}).get("httpGet") or {}
    if readiness.get("path") != READINESS_PATH:
        yield f"{where}: readiness probe is not an HTTP GET of {READINESS_PATH}"
    if liveness.get("path") != LIVENESS_PATH:
        yield f"{where}: liveness probe is not an HTTP GET of {LIVENESS_PATH}"

    env = server_env(m, d, c)

    pre_stop = (c.get("lifecycle") or {}).get("preStop") or {}
    sleep = (pre_stop.get("sleep") or {}).get("seconds")
    if not isinstance(sleep, int) or sleep <= 0:
        yield f"{where}: no preStop sleep to let endpoints drain before SIGTERM"
        sleep = 0
    shutdown_text = env.get("CHORUS_SHUTDOWN_TIMEOUT")
    shutdown = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS if shutdown_text is None else parse_duration(shutdown_text)
    if shutdown is None:
        yield f"{where}: CHORUS_SHUTDOWN_TIMEOUT {shutdown_text!r} is not a duration like 30s"
        shutdown = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    drain_text = env.get("CHORUS_DRAIN_DELAY")
    drain = 0.0 if drain_text is None else parse_duration(drain_text)
    if drain is None:
        yield f"{where}: CHORUS_DRAIN_DELAY {drain_text!r} is not a duration like 5s"
        drain = 0.0
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace < sleep + drain + shutdown + EXIT_MARGIN_SECONDS:
        yield (
            f"{ident(d)}: terminationGracePeriodSeconds {grace} is less than preStop {sleep}s + "
            f"drain delay {drain:g}s + shutdown timeout {shutdown:g}s + {EXIT_MARGIN_SECONDS}s to exit"
        )

    if spec.get("enableServiceLinks") is not False:
        yield f"{ident(d)}: enableServiceLinks is not false (injects CHORUS_*_PORT variables)"

    listen = env.get("CHORUS_LISTEN", "")
    port = listen.rsplit(":", 1)[-1] if ":" in listen else ""
    declared = {p.get("containerPort") for p in c.get("ports") or []}
    if not port.isdigit() or int(port) not in declared:
        yield f"{where}: CHORUS_LISTEN {listen!r} does not listen on a declared container port"

    mounts = [vm.get("mountPath", "") for vm in c.get("volumeMounts") or []]
    data_dir = env.get("CHORUS_DATA_DIR")
    if not data_dir:
        yield f"{where}: CHORUS_DATA_DIR is not set"
    elif not any(data_dir == p or data_dir.startswith(p.rstrip("/") + "/") for p in mounts):
        yield f"{where}: CHORUS_DATA_DIR {data_dir} is not on a volume (root fs is read-only)"

    targeted = any(
        (h.get("spec") or {}).get("scaleTargetRef", {}).get("name") == SERVER_DEPLOYMENT
        for h in m.of_kind("HorizontalPodAutoscaler")
    )
    if targeted and "replicas" in (d.get("spec") or {}):
        yield f"{ident(d)}: sets replicas although an HPA owns the count (apply would reset it)"


# --- rules on references between objects ---------------------------------------------------------


def check_references(m: Manifests, external_secrets: set[str]) -> Iterator[str]:
    def exists(kind: str, name: str, namespace: str) -> bool:
        if kind == "Secret" and name in external_secrets:
            return True
        return m.find(kind, name, namespace) is not None

    for w in m.workloads():
        spec = pod_spec(w)
        namespace = ns(w)
        account = spec.get("serviceAccountName")
        if account and not exists("ServiceAccount", account, namespace):
            yield f"{ident(w)}: ServiceAccount {account} is not rendered"
        for volume in spec.get("volumes") or []:
            if "configMap" in volume and not exists("ConfigMap", volume["configMap"].get("name"), namespace):
                yield f"{ident(w)}: volume {volume.get('name')} names a missing ConfigMap"
            if "secret" in volume and not exists("Secret", volume["secret"].get("secretName"), namespace):
                yield f"{ident(w)}: volume {volume.get('name')} names a missing Secret"
        for c in containers(spec):
            where = f"{ident(w)} container {c.get('name')}"
            for source in c.get("envFrom") or []:
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(key)
                    if ref and not ref.get("optional") and not exists(kind, ref.get("name"), namespace):
                        yield f"{where}: envFrom {kind} {ref.get('name')} is not rendered"
            for item in c.get("env") or []:
                value_from = item.get("valueFrom") or {}
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = value_from.get(key)
                    if not ref or ref.get("optional"):
                        continue
                    name = ref.get("name")
                    if not exists(kind, name, namespace):
                        yield f"{where}: env {item.get('name')} names missing {kind} {name}"
                        continue
                    target = m.find(kind, name, namespace)
                    if target is not None:
                        keys = secret_values(target) if kind == "Secret" else config_values(target)
                        if ref.get("key") not in keys:
                            yield f"{where}: env {item.get('name')}: {kind} {name} has no key {ref.get('key')}"


def check_selectors(m: Manifests) -> Iterator[str]:
    def pods_matching(namespace: str, selector: Any, plain: bool = False) -> list[dict[str, Any]]:
        """Pod specs of the workloads in `namespace` whose pod labels `selector` selects."""
        matches = plain_selector_matches if plain else selector_matches
        return [pod_spec(w) for w in m.workloads() if ns(w) == namespace and matches(selector, pod_labels(w))]

    for w in m.workloads():
        selector = (w.get("spec") or {}).get("selector")
        if w.get("kind") != "Job" and not selector_matches(selector, pod_labels(w)):
            yield f"{ident(w)}: its selector does not match its own pod template"

    for svc in m.of_kind("Service"):
        spec = svc.get("spec") or {}
        pods = pods_matching(ns(svc), spec.get("selector"), plain=True)
        if not pods:
            yield f"{ident(svc)}: selector matches no pod template"
            continue
        declared = [p for ps in pods for c in ps.get("containers") or [] for p in c.get("ports") or []]
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            key = "name" if isinstance(target, str) else "containerPort"
            if not any(p.get(key) == target for p in declared):
                yield f"{ident(svc)}: targetPort {target!r} is not a port of the selected pods"

    for pdb in m.of_kind("PodDisruptionBudget"):
        if not pods_matching(ns(pdb), (pdb.get("spec") or {}).get("selector")):
            yield f"{ident(pdb)}: selector matches no pod template"

    for policy in m.of_kind("NetworkPolicy"):
        spec = policy.get("spec") or {}
        if spec.get("podSelector") and not pods_matching(ns(policy), spec["podSelector"]):
            yield f"{ident(policy)}: podSelector matches no pod template"
        for rule in spec.get("ingress") or []:
            for peer in rule.get("from") or []:
                # A peer with a namespaceSelector may name pods of other namespaces; skip those.
                if set(peer) == {"podSelector"} and not pods_matching(ns(policy), peer["podSelector"]):
                    yield f"{ident(policy)}: ingress peer podSelector matches no pod template"

    for hpa in m.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        target = m.find(ref.get("kind", ""), ref.get("name", ""), ns(hpa))
        if target is None:
            yield f"{ident(hpa)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered"
            continue
        for metric in spec.get("metrics") or []:
            resource = (metric.get("resource") or {}).get("name")
            if metric.get("type") == "Resource" and resource:
                for c in pod_spec(target).get("containers") or []:
                    if resource not in ((c.get("resources") or {}).get("requests") or {}):
                        yield f"{ident(hpa)}: scales on {resource} but container {c.get('name')} requests none"

    for sts in m.of_kind("StatefulSet"):
        name = (sts.get("spec") or {}).get("serviceName")
        svc = m.find("Service", name or "", ns(sts))
        if svc is None:
            yield f"{ident(sts)}: serviceName {name} is not rendered"
        elif (svc.get("spec") or {}).get("clusterIP") != "None":
            yield f"{ident(sts)}: governing Service {name} is not headless"

    for monitor in m.of_kind("ServiceMonitor"):
        spec = monitor.get("spec") or {}
        services = [
            s
            for s in m.of_kind("Service")
            if ns(s) == ns(monitor) and selector_matches(spec.get("selector"), meta(s).get("labels") or {})
        ]
        if not services:
            yield f"{ident(monitor)}: selector matches no Service"
        for endpoint in spec.get("endpoints") or []:
            port = endpoint.get("port")
            if port and not any(
                p.get("name") == port for s in services for p in (s.get("spec") or {}).get("ports") or []
            ):
                yield f"{ident(monitor)}: endpoint port {port!r} is not a named port of the selected Services"


# --- rules on availability and secrets -----------------------------------------------------------


def check_disruption(m: Manifests) -> Iterator[str]:
    for hpa in m.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        minimum = spec.get("minReplicas", 1)
        if minimum < 2:
            yield f"{ident(hpa)}: minReplicas {minimum} leaves nothing serving during a rollout"
        target = m.find("Deployment", (spec.get("scaleTargetRef") or {}).get("name", ""), ns(hpa))
        if target is None:
            continue
        for pdb in m.of_kind("PodDisruptionBudget"):
            pdb_spec = pdb.get("spec") or {}
            if ns(pdb) != ns(hpa) or not selector_matches(pdb_spec.get("selector"), pod_labels(target)):
                continue
            blocked = pdb_spec.get("maxUnavailable") in (0, "0%") or (
                isinstance(pdb_spec.get("minAvailable"), int) and pdb_spec["minAvailable"] >= minimum
            )
            if blocked:
                yield f"{ident(pdb)}: allows no voluntary disruption at {minimum} replicas (drains would hang)"


def check_redis_password(m: Manifests) -> Iterator[str]:
    """The bundled Redis's password and the one in CHORUS_REDIS_URL come from two keys; keep them equal."""
    for redis in m.of_kind("Secret"):
        password = secret_values(redis).get("REDIS_PASSWORD")
        if password is None:
            continue
        for secret in m.of_kind("Secret"):
            url = secret_values(secret).get("CHORUS_REDIS_URL")
            if url is None or ns(secret) != ns(redis):
                continue
            try:
                url_password = urlsplit(url).password
            except ValueError:
                url_password = None
            if url_password != password:
                yield f"{ident(secret)}: the password in CHORUS_REDIS_URL differs from {ident(redis)} REDIS_PASSWORD"


def check_namespaces(m: Manifests) -> Iterator[str]:
    for namespace in m.of_kind("Namespace"):
        labels = meta(namespace).get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            yield f"{ident(namespace)}: does not enforce the restricted Pod Security Standard"


def check_production(m: Manifests, external_secrets: set[str]) -> Iterator[str]:
    for secret in m.of_kind("Secret"):
        for key, value in secret_values(secret).items():
            if DEV_SECRET_PREFIX in value:
                yield f"{ident(secret)}: key {key} holds a development placeholder"
        if meta(secret).get("name") in external_secrets:
            yield f"{ident(secret)}: rendered, but production expects it to be created out of band"
    if not m.of_kind("ServiceMonitor"):
        yield "production renders no ServiceMonitor"


# --- entry points --------------------------------------------------------------------------------


def load(path: str) -> Manifests:
    with open(path, encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    return Manifests([o for o in objects if isinstance(o, dict)])


def check_manifests(path: str, external_secrets: set[str], production: bool) -> list[str]:
    m = load(path)
    problems: list[str] = []
    for rule in (
        check_pod_security,
        check_resources,
        check_scratch_space,
        check_probes,
        check_images,
        check_server,
        check_selectors,
        check_disruption,
        check_redis_password,
        check_namespaces,
    ):
        problems.extend(rule(m))
    problems.extend(check_references(m, external_secrets))
    if production:
        problems.extend(check_production(m, external_secrets))
    return problems


def final_stage(dockerfile: str) -> dict[str, list[str]]:
    """Instructions of the last stage, keyed by instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    stage: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stage = {}
        stage.setdefault(instruction, []).append(rest.strip())
    return stage


def check_dockerfile(dockerfile_path: str, manifests_path: str) -> list[str]:
    with open(dockerfile_path, encoding="utf-8") as f:
        stage = final_stage(f.read())
    m = load(manifests_path)
    problems: list[str] = []
    deployment = next((d for d in m.of_kind("Deployment") if meta(d).get("name") == SERVER_DEPLOYMENT), None)
    if deployment is None:
        return [f"no Deployment/{SERVER_DEPLOYMENT} in {manifests_path}"]
    spec = pod_spec(deployment)
    container = next((c for c in spec.get("containers") or [] if c.get("name") == "chorus"), {})

    users = stage.get("USER") or []
    uid = users[-1].split(":")[0] if users else ""
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"{dockerfile_path}: the runtime stage's USER {uid!r} is not a numeric non-root uid")
    elif (spec.get("securityContext") or {}).get("runAsUser") != int(uid):
        problems.append(f"{dockerfile_path}: USER {uid} differs from the Deployment's runAsUser")

    exposed = {
        int(p.split("/")[0])
        for e in stage.get("EXPOSE") or []
        for p in e.split()
        if p.split("/")[0].isdigit()
    }
    ports = {p.get("containerPort") for p in container.get("ports") or []}
    if not ports <= exposed:
        problems.append(
            f"{dockerfile_path}: EXPOSE {sorted(exposed)} does not cover container ports {sorted(ports)}"
        )

    try:
        entrypoint = json.loads((stage.get("ENTRYPOINT") or ["null"])[-1])
    except json.JSONDecodeError:
        entrypoint = None
    if not (isinstance(entrypoint, list) and entrypoint and entrypoint[-1].endswith("/chorus")):
        problems.append(f"{dockerfile_path}: ENTRYPOINT is not the chorus binary in exec form")
    if container.get("command"):
        problems.append(f"Deployment/{SERVER_DEPLOYMENT}: overrides the image ENTRYPOINT")
    if container.get("args") != ["serve"]:
        problems.append(f"Deployment/{SERVER_DEPLOYMENT}: args are not [serve]")
    return problems


def is_built_in(api_version: str) -> bool:
    """Core and *.k8s.io groups ship with Kubernetes; any other dotted group comes from a CRD."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def custom_resources(path: str) -> list[dict[str, Any]]:
    return [o for o in load(path).objects if not is_built_in(str(o.get("apiVersion", "")))]


def check_dashboard(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{path}: {e}"]
    panels = dashboard.get("panels") if isinstance(dashboard, dict) else None
    if not panels:
        return [f"{path}: no panels"]
    problems = []
    for panel in panels:
        if panel.get("type") == "row":
            continue
        exprs = [t.get("expr") for t in panel.get("targets") or []]
        if not exprs or not all(isinstance(e, str) and e.strip() for e in exprs):
            problems.append(f"{path}: panel {panel.get('title')!r} has a target without a query")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    manifests = sub.add_parser("manifests")
    manifests.add_argument("rendered")
    manifests.add_argument(
        "--external-secret",
        action="append",
        default=[],
        help="a Secret created out of band, so it may be referenced without being rendered",
    )
    manifests.add_argument("--production", action="store_true")
    dockerfile = sub.add_parser("dockerfile")
    dockerfile.add_argument("dockerfile")
    dockerfile.add_argument("rendered")
    dashboard = sub.add_parser("dashboard")
    dashboard.add_argument("path")
    customs = sub.add_parser("custom-resources")
    customs.add_argument("rendered")
    args = parser.parse_args()

    if args.command == "custom-resources":
        json.dump(custom_resources(args.rendered), sys.stdout)
        return 0

    if args.command == "manifests":
        problems = check_manifests(args.rendered, set(args.external_secret), args.production)
    elif args.command == "dockerfile":
        problems = check_dockerfile(args.dockerfile, args.rendered)
    else:
        problems = check_dashboard(args.path)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
