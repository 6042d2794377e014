"""deploy/docker-compose.yml, the Dockerfile and the optional Kong/ELK profiles, parsed.

Docker is not available here: these tests check what can be checked without a daemon — every
mounted or copied file exists, every ``GTV_*`` variable is a real setting, every command is a
real ``gtvision`` command line, every image is pinned, and the pieces agree with each other
(Prometheus' DNS names, Grafana's paths, Filebeat's template, the secrets of ``.env.example``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT
from tests.deploy.deployfiles import (
    APP_VERSION,
    command_problem,
    env_problems,
    gtvision_args,
    haproxy_knobs,
    pinned,
)
from tests.logscan import REQUIRED_KEYS

COMPOSE = DEPLOY / "docker-compose.yml"
#: what issue 16 asks the compose file to run
REQUIRED_SERVICES = {
    "haproxy", "serve", "flow-0", "flow-1", "relay", "retention", "migrate", "prometheus",
    "alertmanager", "grafana", "node-exporter", "postgres-exporter", "pgbackrest", "mediamtx",
    "minio", "postgres", "redis", "rabbitmq-0", "rabbitmq-1", "rabbitmq-2", "kong",
    "elasticsearch", "kibana", "filebeat",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _env_names(service: dict[str, Any]) -> list[str]:
    env = service.get("environment") or {}
    return list(env) if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]


def test_every_service_the_issue_names_runs_with_a_pinned_image(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services) >= REQUIRED_SERVICES, sorted(REQUIRED_SERVICES - set(services))
    unpinned = {name: s["image"] for name, s in services.items() if not pinned(s["image"])}
    assert unpinned == {}
    app = {s["image"] for s in services.values() if s["image"].startswith("gtvision:")}
    assert app == {f"gtvision:{APP_VERSION}"}, "the app image tag is the package version"
    assert services["serve"]["deploy"]["replicas"] == 2
    assert {p for s in services.values() for p in s.get("profiles", [])} == {"kong", "elk"}
    assert services["postgres"]["image"].startswith("gtvision-postgres:15.")
    assert services["redis"]["image"].startswith("redis:7.")
    brokers = [s for s in services if s.startswith("rabbitmq-")]
    assert all(services[b]["image"].startswith("rabbitmq:3.") for b in brokers)
    # the relay knows every node, and every node is in the cluster's peer list
    url = services["relay"]["environment"]["GTV_AMQP_URL"]
    assert sorted(re.findall(r"@(rabbitmq-\d):5672/", url)) == sorted(brokers)
    peers = re.findall(r"= rabbit@(\S+)", (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text())
    assert sorted(peers) == sorted(brokers)


def test_every_mounted_or_built_file_exists(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in _services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                if not (DEPLOY / source).exists():
                    missing.append(f"{name}: {source}")
            elif not source.startswith("/"):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        build = service.get("build")
        if build:
            context = DEPLOY / build["context"]
            if not (context / build["dockerfile"]).is_file():
                missing.append(f"{name}: {build}")
    assert missing == []


def test_every_gtvision_variable_is_a_setting_and_every_command_parses(
    compose: dict[str, Any],
) -> None:
    bad: list[str] = []
    commands = 0
    knobs = haproxy_knobs()
    for name, service in _services(compose).items():
        names = _env_names(service)
        if name == "haproxy":  # deploy/haproxy.cfg's own variables, documented in its header
            bad += [f"{name}: {v} is not a knob of haproxy.cfg" for v in set(names) - knobs]
            continue
        bad += [f"{name}: {v}" for v in env_problems(names)]
        args = gtvision_args(service.get("command") or [])
        if service["image"].startswith("gtvision:"):
            assert args is not None, f"{name} runs no gtvision command"
        if args is not None:
            commands += 1
            problem = command_problem(args)
            if problem:
                bad.append(f"{name}: {problem}")
    assert bad == []
    assert commands == 6  # migrate, serve, flow-0, flow-1, relay, retention


def test_secrets_come_from_the_env_file_and_every_one_is_documented(
    compose: dict[str, Any],
) -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))
    example = DEPLOY / ".env.example"
    documented = {line.split("=", 1)[0] for line in example.read_text().splitlines() if "=" in line}
    assert required <= documented, sorted(required - documented)
    assert "POSTGRES_PASSWORD" in required
    assert "GTV_JWT_SECRET" in required
    for name, service in _services(compose).items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|CIPHER_PASS|_KEY$", key) and key != "GTV_S3_ACCESS_KEY":
                assert str(value).startswith("${"), f"{name}: {key} is written in the file"


def test_prometheus_grafana_and_logs_agree_with_the_services(compose: dict[str, Any]) -> None:
    services = _services(compose)
    names = set(services)
    for service in services.values():
        nets = service.get("networks") or {}
        if isinstance(nets, dict):
            for net in nets.values():
                names |= set((net or {}).get("aliases", []))
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    dns = {
        n
        for job in prom["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for n in sd["names"]
    }
    dns |= {
        n
        for am in prom["alerting"]["alertmanagers"]
        for sd in am["dns_sd_configs"]
        for n in sd["names"]
    }
    assert dns <= names, f"Prometheus resolves names no service has: {sorted(dns - names)}"
    for job in ("flow-0", "flow-1", "relay", "retention"):
        env = services[job]["environment"]
        assert env["GTV_METRICS_PORT"] == "9400", job
    grafana_mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert grafana_mounts["./grafana/dashboards"] == "/var/lib/grafana/dashboards"
    filebeat = yaml.safe_load((DEPLOY / "elk" / "filebeat.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["filebeat"]["volumes"]}
    template_path = filebeat["setup.template.json.path"]
    assert (DEPLOY / mounts[template_path]).is_file()
    template = json.loads((DEPLOY / mounts[template_path]).read_text())
    fields = template["template"]["mappings"]["properties"]["gtv"]["properties"]
    assert set(REQUIRED_KEYS) <= set(fields), "the index template maps every JSON log field"
    decode = next(p["decode_json_fields"] for p in filebeat["filebeat.inputs"][0]["processors"]
                  if "decode_json_fields" in p)  # fmt: skip
    assert decode["target"] == "gtv"


def test_kong_is_db_less_routes_to_haproxy_with_limits_and_leaves_jwt_to_gtvision(
    compose: dict[str, Any],
) -> None:
    kong = _services(compose)["kong"]
    assert kong["environment"]["KONG_DATABASE"] == "off"
    config = yaml.safe_load((DEPLOY / "kong" / "kong.yml").read_text())
    assert config["_format_version"] == "3.0"
    plugins = {p["name"] for s in config["services"] for p in s.get("plugins", [])}
    assert {"rate-limiting", "request-size-limiting"} <= plugins
    assert not plugins & {"jwt", "oauth2", "key-auth", "basic-auth"}
    api = next(s for s in config["services"] if s["name"] == "gtvision-api")
    assert api["url"] == "https://haproxy:8443"
    size = next(p for p in api["plugins"] if p["name"] == "request-size-limiting")
    assert size["config"]["allowed_payload_size"] == 1  # MB = GTV_MAX_BODY_BYTES' default


def test_dockerfile_is_multi_stage_non_root_with_checked_weights_and_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert len(stages) >= 2
    images = set(re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.M))
    assert len(images) == 2  # Python and Node (the console's build)
    assert images
    assert all(pinned(i) for i in images)
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"^USER gtvision$", final, re.M)
    assert "pip install" in text
    assert "'.[lpr]'" in text
    assert "gtvision models pull" in text  # sha256-checked by gtvision.models.store
    assert "npm ci" in text  # the console is built, not taken from the build context
    assert re.search(r"^HEALTHCHECK ", final, re.M)
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)", text, re.M):
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not any(Path(source).parts[0] == i.strip("/") for i in ignored), source


def test_healthcheck_script_picks_the_port_of_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hc", DEPLOY / "docker" / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("HEALTHCHECK_URL", raising=False)
    monkeypatch.delenv("GTV_METRICS_PORT", raising=False)
    monkeypatch.setenv("GTV_HTTP_PORT", "8081")
    assert module.url() == "http://127.0.0.1:8081/healthz"
    monkeypatch.setenv("GTV_METRICS_PORT", "9400")
    assert module.url() == "http://127.0.0.1:9400/metrics"
    monkeypatch.setenv("HEALTHCHECK_URL", "http://127.0.0.1:1/x")
    assert module.url() == "http://127.0.0.1:1/x"
    assert module.main() == 1  # nothing listens there
