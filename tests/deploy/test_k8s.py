"""deploy/kustomization.yaml + deploy/k8s/, parsed (no Kubernetes here).

Checked: every resource and generated file exists, every image is pinned, every container's
``GTV_*`` variable is a setting and every command a real ``gtvision`` command line, the
ConfigMaps come from the same files compose mounts, the workloads the issue names exist with
their HPA/PDB/headless Service, and the flow StatefulSet's Bytewax address list matches its
replicas and Service.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY
from tests.deploy.deployfiles import (
    command_problem,
    env_problems,
    gtvision_args,
    haproxy_knobs,
    pinned,
    walk,
)

K8S = DEPLOY / "k8s"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    top = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert top["resources"] == ["k8s"]
    inner = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in inner["resources"]:
        for doc in _docs(K8S / resource):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


def _containers(objects: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for (kind, name), doc in objects.items():
        if kind in {"Deployment", "StatefulSet", "Job"}:
            for c in doc["spec"]["template"]["spec"]["containers"]:
                out.append((f"{kind}/{name}", c))
    return out


def test_configmaps_are_generated_from_the_files_compose_mounts() -> None:
    top = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = {g["name"]: g for g in top["configMapGenerator"]}
    assert generated["haproxy"]["files"] == ["haproxy.cfg"]
    assert generated["prometheus"]["files"] == [
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
    ]
    compose = (DEPLOY / "docker-compose.yml").read_text()
    for gen in generated.values():
        for path in [*gen.get("files", []), *gen.get("envs", [])]:
            assert (DEPLOY / path).is_file(), path
            if path in ("haproxy.cfg", "prometheus/prometheus.yml", "prometheus/alerts.yml"):
                assert f"./{path}:" in compose, f"compose does not mount {path}"
    images = {i["name"]: i for i in top["images"]}
    assert pinned(f"{images['gtvision']['newName']}:{images['gtvision']['newTag']}")


def test_workloads_the_issue_names(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    for key in [
        ("Deployment", "gtvision-web"), ("HorizontalPodAutoscaler", "gtvision-web"),
        ("PodDisruptionBudget", "gtvision-web"), ("StatefulSet", "gtvision-flow"),
        ("Service", "gtvision-flow"), ("Deployment", "gtvision-relay"),
        ("Deployment", "gtvision-retention"), ("Job", "gtvision-migrate"),
        ("Deployment", "haproxy"), ("Deployment", "prometheus"),
    ]:  # fmt: skip
        assert key in objects, key
    hpa = objects[("HorizontalPodAutoscaler", "gtvision-web")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "gtvision-web"
    assert hpa["minReplicas"] >= 2
    pdb = objects[("PodDisruptionBudget", "gtvision-web")]["spec"]
    web_labels = objects[("Deployment", "gtvision-web")]["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= web_labels.items()


def test_flow_statefulset_addresses_match_its_replicas_and_headless_service(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    sts = objects[("StatefulSet", "gtvision-flow")]["spec"]
    service = objects[("Service", sts["serviceName"])]["spec"]
    assert service["clusterIP"] == "None"
    assert service["publishNotReadyAddresses"] is True
    (container,) = sts["template"]["spec"]["containers"]
    words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", container["command"][2]))
    addresses = words[words.index("-a") + 1].split(";")
    expected = [f"gtvision-flow-{i}.{sts['serviceName']}:2101" for i in range(sts["replicas"])]
    assert addresses == expected
    assert '-i "${HOSTNAME##*-}"' in container["command"][2]  # the process id is the ordinal


def test_images_pinned_env_real_and_commands_parse(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    bad: list[str] = []
    settings_file = K8S / "gtvision.env"
    names = [
        line.split("=", 1)[0]
        for line in settings_file.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    bad += [f"gtvision.env: {n}" for n in env_problems(names)]
    knobs = haproxy_knobs()
    commands = 0
    for where, container in _containers(objects):
        image = container["image"]
        if image != "gtvision" and not pinned(image):  # gtvision: pinned by kustomize images
            bad.append(f"{where}: unpinned image {image}")
        env = [e["name"] for e in container.get("env", [])]
        if image.startswith("haproxy:"):  # deploy/haproxy.cfg's own variables (its header)
            bad += [f"{where}: {n} is not a knob of haproxy.cfg" for n in set(env) - knobs]
        else:
            bad += [f"{where}: {n}" for n in env_problems(env)]
        args = gtvision_args(container.get("command", []))
        if image == "gtvision":
            assert args is not None, f"{where} runs no gtvision command"
            commands += 1
            problem = command_problem(args)
            if problem:
                bad.append(f"{where}: {problem}")
            refs = {
                r.get("configMapRef", r.get("secretRef", {}))["name"] for r in container["envFrom"]
            }
            assert refs == {"gtvision-env", "gtvision-secrets"}, where
    assert bad == []
    assert commands == 5  # migrate, web, flow, relay, retention


def test_prometheus_dns_names_exist_as_services(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    ours = {n for job in prom["scrape_configs"]
            if job["job_name"].startswith("gtvision-") or job["job_name"] == "haproxy"
            for sd in job["dns_sd_configs"] for n in sd["names"]}  # fmt: skip
    services = {name for kind, name in objects if kind == "Service"}
    assert ours <= services, sorted(ours - services)
    for name in ours:
        assert objects[("Service", name)]["spec"]["clusterIP"] == "None", f"{name} not headless"
    mounts = [
        v for _, c in _containers(objects) for v in c.get("volumeMounts", [])
        if v["name"] == "config"
    ]  # fmt: skip
    assert {m["mountPath"] for m in mounts} == {"/usr/local/etc/haproxy", "/etc/prometheus"}
    for doc in objects.values():
        for node in walk(doc):
            ref = node.get("configMap")
            if isinstance(ref, dict):
                assert ref["name"] in {"haproxy", "prometheus"}, ref
            secret = node.get("secret")
            if isinstance(secret, dict):
                assert secret["secretName"] == "haproxy-tls", secret
