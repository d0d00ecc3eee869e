"""docker-compose.yml and the Dockerfile agree with the code they deploy.

There is no Docker engine on the development or CI machines, so these tests read
the files instead of running them: the compose topology must configure every
service only with real ``GRIDHUB_*`` settings whose values validate, publish the
ports the services listen on, health-check what it waits for, and the image must
contain every package the wheel ships. The health-check commands themselves are
executed against the real endpoints and announcement files.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from foundation import runfiles
from foundation.settings import Settings
from gridhub.broker import free_port
from gridhub.services import FEEDS, SERVICES

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WHEEL_PACKAGES: list[str] = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
PREFIX = "GRIDHUB_"
VARIABLE = re.compile(r"\bGRIDHUB_[A-Z0-9_]+\b")
COMPOSED = (*SERVICES, *FEEDS)
"""Every gridhub service compose runs: the core and the doors always, the department feeds too (pull in a profile)."""
UNPUBLISHED_PORTS = {"ops_port"}
"""Ports a service listens on for the compose network only: the ops endpoint is scraped there, never published."""


# --- reading the files ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def services_of(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "docker-compose.yml has no services"
    return services


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def healthcheck_argv(service: dict[str, Any]) -> list[str] | None:
    """The command of a service's own health check, or None when it has none (or it is disabled)."""
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return [str(part) for part in test[1:]]
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", str(test[1])]
    return [str(part) for part in test]


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(host address, host port, container port) of every published port."""
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append((str(entry.get("host_ip", "")), str(entry.get("published", "")), int(entry["target"])))
            continue
        parts = str(entry).split("/", 1)[0].rsplit(":", 2)
        host_ip, published = ("", "") if len(parts) == 1 else (parts[0] if len(parts) == 3 else "", parts[-2])
        ports.append((host_ip, published, int(parts[-1])))
    return ports


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, container path) of every mount."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target = [*str(entry).split(":"), ""][:2]
            mounts.append((source, target) if target else ("", source))
    return mounts


def seconds(duration: str | int) -> float:
    """A compose duration (``30s``, ``1m30s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", str(duration))
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def field_name(variable: str) -> str:
    return variable.removeprefix(PREFIX).lower()


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings exactly as a container with this environment reads them (nothing from the test's own env)."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(PREFIX):
            monkeypatch.setenv(name, value)
    return Settings()


def port_fields(env: dict[str, str]) -> dict[str, str]:
    """The ``*_port`` settings a service's environment sets, with the ``*_host`` setting that goes with each."""
    return {
        field_name(name): field_name(name).removesuffix("_port") + "_host"
        for name in env
        if name.startswith(PREFIX) and name.endswith("_PORT") and field_name(name) not in UNPUBLISHED_PORTS
    }


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str] | None:
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def copy_sources() -> list[str]:
    """Normalised source paths of every COPY/ADD from the build context."""
    sources = []
    for keyword, arguments in dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = exec_form(arguments) or shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources += [str(PurePosixPath(path)) for path in paths[:-1]]
    return sources


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps a context path out of the build (last matching pattern wins).

    A pattern that matches a folder keeps everything in it out too.
    """
    ignored = False
    lines = DOCKERIGNORE.read_text().splitlines() if DOCKERIGNORE.exists() else []
    parts = PurePosixPath(path).parts
    folders = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    for line in lines:
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = folders
        if pattern.startswith("**/"):
            pattern = pattern[3:]
            candidates = ["/".join(parts[index:]) for index in range(len(parts))]
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            ignored = not negated
    return ignored


# --- the file as a whole ----------------------------------------------------------------------------------------


def test_compose_file_parses_into_services_and_volumes(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    assert all(isinstance(service, dict) for service in services.values())
    assert "kafka" in services


def test_compose_file_has_no_variable_interpolation() -> None:
    # Compose would substitute ``$X`` from the operator's shell (or drop it): every value here is literal.
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), "unescaped $ in docker-compose.yml"


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services_of(compose).items():
        for source, _target in volume_mounts(service):
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


# --- Kafka ------------------------------------------------------------------------------------------------------


def test_kafka_image_is_apache_kafka_3_9(compose: dict[str, Any]) -> None:
    image = services_of(compose)["kafka"]["image"]
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", image), f"kafka must be pinned to apache/kafka 3.9.x, not {image}"


def test_kafka_is_a_single_kraft_node_that_creates_no_topics(compose: dict[str, Any]) -> None:
    kafka = services_of(compose)["kafka"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env.get("CLUSTER_ID"), "a KRaft node needs a fixed cluster id to format its log dirs once"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for setting in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[setting] == "1", f"{setting} must be 1 on a single broker"
    log_dirs = env.get("KAFKA_LOG_DIRS", "/var/lib/kafka/data").split(",")
    targets = {target for source, target in volume_mounts(kafka) if source}
    assert set(log_dirs) <= targets, f"Kafka log dirs {log_dirs} are not on a volume ({targets})"
    assert healthcheck_argv(kafka), "kafka needs a health check: the gridhub services wait for it"


def test_kafka_advertises_the_address_the_services_bootstrap_from(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    advertised = {
        listener.split("://", 1)[1]
        for listener in environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for name in SERVICES:
        bootstrap = environment(services[name])["GRIDHUB_KAFKA_BOOTSTRAP"]
        for address in bootstrap.split(","):
            assert address in advertised, f"{name} bootstraps from {address}; kafka advertises {advertised}"
            assert address.rsplit(":", 1)[0] in services, f"{address} is not a compose service name"


def test_topic_replication_fits_the_brokers(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    services = services_of(compose)
    brokers = sum(1 for service in services.values() if "broker" in environment(service).get("KAFKA_PROCESS_ROLES", ""))
    for name in SERVICES:
        settings = settings_from(monkeypatch, environment(services[name]))
        assert settings.topic_replication <= brokers, f"{name}: replication {settings.topic_replication} > brokers"


# --- the gridhub services ---------------------------------------------------------------------------------------


def test_compose_runs_exactly_the_gridhub_services(compose: dict[str, Any]) -> None:
    running = {
        argv[1]: name
        for name, service in services_of(compose).items()
        if (argv := command(service))[:1] == ["service"] and len(argv) == 2
    }
    assert set(running) == set(COMPOSED), f"compose runs {sorted(running)}, gridhub has {sorted(COMPOSED)}"
    assert set(COMPOSED) <= set(services_of(compose))


@pytest.mark.parametrize("name", COMPOSED)
def test_service_runs_its_command_from_the_built_image(compose: dict[str, Any], name: str) -> None:
    services = services_of(compose)
    service = services[name]
    assert command(service) == ["service", name]
    build = service.get("build")
    assert build, f"{name} must run the image built from the Dockerfile"
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).resolve() == DOCKERFILE
    images = {services[other].get("image") for other in COMPOSED}
    assert len(images) == 1 and None not in images, f"the services must share one image tag, not {images}"


def test_every_gridhub_variable_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    for path in (COMPOSE_FILE, DOCKERFILE):
        used = set(VARIABLE.findall(path.read_text()))
        unknown = sorted(name for name in used if field_name(name) not in fields)
        assert not unknown, f"{path.name} uses variables no setting reads: {unknown}"
    assert VARIABLE.findall(COMPOSE_FILE.read_text()), "no GRIDHUB_ variables found at all"


@pytest.mark.parametrize("name", COMPOSED)
def test_service_environment_is_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    env = environment(services_of(compose)[name])
    settings = settings_from(monkeypatch, env)  # raises ValidationError on a bad value
    for variable, raw in env.items():
        if variable.startswith(PREFIX):
            value = getattr(settings, field_name(variable))
            read_back = str(value).lower() if isinstance(value, bool) else str(value)
            assert read_back == raw or value == type(value)(raw), f"{variable}={raw!r} read as {value!r}"
    assert settings.kafka_bootstrap, f"{name} would try to start an embedded broker"
    assert settings.data_dir.is_absolute()
    assert settings.log_format == "json"
    assert settings.worker_rebalance_timeout_s >= 10, "real Kafka needs a normal rebalance timeout"


def test_image_default_data_dir_matches_compose(compose: dict[str, Any]) -> None:
    env_lines = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "ENV"]
    image_data_dir = re.search(r"GRIDHUB_DATA_DIR=(\S+)", " ".join(env_lines))
    assert image_data_dir, "the image should default GRIDHUB_DATA_DIR to the directory it prepares"
    for name in SERVICES:
        assert environment(services_of(compose)[name])["GRIDHUB_DATA_DIR"] == image_data_dir.group(1)


@pytest.mark.parametrize("name", COMPOSED)
def test_published_ports_are_the_ports_the_service_listens_on(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    service = services_of(compose)[name]
    env = environment(service)
    settings = settings_from(monkeypatch, env)
    listening = {field: getattr(settings, field) for field in port_fields(env)}
    published = {target for _host_ip, _published, target in published_ports(service)}
    assert published == set(listening.values()), f"{name} publishes {published}, listens on {listening}"
    for port_field, host_field in port_fields(env).items():
        assert getattr(settings, host_field) == "0.0.0.0", f"{name} binds {port_field} where no published port reaches"


@pytest.mark.parametrize("name", COMPOSED)
def test_http_health_check_probes_the_configured_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    service = services_of(compose)[name]
    settings = settings_from(monkeypatch, environment(service))
    probed = {int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", " ".join(healthcheck_argv(service) or []))}
    listening = {getattr(settings, field) for field in port_fields(environment(service))}
    assert probed == listening, f"{name} health check probes {probed}, the service listens on {listening}"


def test_every_service_is_health_checked(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for name, service in services.items():
        if healthcheck_argv(service):
            continue
        depends = service.get("depends_on") or {}
        healthy = [
            other
            for other, condition in (depends.items() if isinstance(depends, dict) else [])
            if condition.get("condition") == "service_healthy" and healthcheck_argv(services[other])
        ]
        assert healthy, f"{name} has no health check and waits for no healthy service"


@pytest.mark.parametrize("name", COMPOSED)
def test_service_waits_for_healthy_kafka_and_restarts(compose: dict[str, Any], name: str) -> None:
    service = services_of(compose)[name]
    assert (service.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy"
    assert service.get("restart") == "unless-stopped"
    assert seconds(service.get("stop_grace_period", "10s")) >= 30, "the sink needs time to finish its batch"


def test_worker_can_be_scaled_and_sink_cannot(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale worker=N"
    assert not published_ports(worker), "a published host port prevents --scale worker=N"
    assert not volume_mounts(worker), "scaled workers would share one data dir (and its run files)"
    replicas = (services["sink"].get("deploy") or {}).get("replicas", 1)
    assert replicas == 1, "DuckDB allows one writing process: the sink is a single writer"


def test_warehouse_and_approvals_state_live_on_volumes(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(compose)

    def on_volume(name: str, path: Path) -> bool:
        targets = [PurePosixPath(target) for source, target in volume_mounts(services[name]) if source]
        return any(PurePosixPath(path).is_relative_to(target) for target in targets)

    sink = settings_from(monkeypatch, environment(services["sink"]))
    assert on_volume("sink", sink.warehouse_file), f"the warehouse {sink.warehouse_file} would die with the container"
    approvals = settings_from(monkeypatch, environment(services["approvals"]))
    assert on_volume("approvals", approvals.state_dir), "the approvals cursor would die with the container"
    if approvals.approvals_url.startswith("sqlite:///"):
        database = Path(approvals.approvals_url.removeprefix("sqlite:///"))
        assert on_volume("approvals", database), f"the SQLite approvals database {database} is not on a volume"


def test_photos_and_the_watched_folder_live_on_volumes(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(compose)
    for name, path in (
        ("patrol", settings_from(monkeypatch, environment(services["patrol"])).photo_store),
        ("watch", settings_from(monkeypatch, environment(services["watch"])).watch_dir),
    ):
        assert path is not None, f"{name} has no folder set"
        named = [target for source, target in volume_mounts(services[name]) if source in (compose.get("volumes") or {})]
        assert any(PurePosixPath(path).is_relative_to(target) for target in named), f"{name}'s {path} is on no volume"


def test_the_department_feeds_log_in_as_exports_and_pull_waits_for_its_profile(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, bindings: set[Binding]
) -> None:
    from gridhub.broker import all_topics
    from schemas.topics import RAW_BATCHES, RAW_EXPORTS

    services = services_of(compose)
    for name in FEEDS:
        settings = settings_from(monkeypatch, environment(services[name]))
        assert settings.kafka_username == "exports", f"{name} logs in as {settings.kafka_username}"
        assert str(settings.kafka_password_file) in secret_mounts(services[name]).values()
        assert all(allows(bindings, "exports", "Write", "topic", topic) for topic in (RAW_EXPORTS, RAW_BATCHES))
        assert all(allows(bindings, "exports", "Describe", "topic", topic) for topic in all_topics(Settings()))
    pull = settings_from(monkeypatch, environment(services["pull"]))
    mounted = {target: source for source, target in volume_mounts(services["pull"])}
    assert str(pull.rest_sources) in mounted, "pull reads a sources file that is not mounted"
    assert services["pull"].get("profiles"), "pull needs the town's sources file: it runs only in its profile"
    assert not services["watch"].get("profiles"), "watch works with the packaged mappings: it always runs"


def test_only_the_sink_mounts_the_warehouse(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # DuckDB allows one writing process, and the warehouse holds personal data whole: everyone else
    # (the screen above all) reads it through the sink's SQL endpoint, with its own token.
    services = services_of(compose)
    sink = settings_from(monkeypatch, environment(services["sink"]))
    volume = next(
        source
        for source, target in volume_mounts(services["sink"])
        if source and PurePosixPath(sink.warehouse_file).is_relative_to(target)
    )
    for name, service in services.items():
        if name != "sink":
            assert volume not in {source for source, _target in volume_mounts(service)}, f"{name} mounts {volume}"


def test_the_screen_reads_through_the_sink_and_acts_through_the_gateway(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without these URLs the screen would look for the sink's and the gateway's run files in its own
    # data dir, find none, and try to open a warehouse file it does not have.
    services = services_of(compose)
    screen = settings_from(monkeypatch, environment(services["screen"]))
    for door, url in (("sink", screen.sink_url), ("patrol", screen.patrol_url)):
        assert url, f"the screen has no URL for {door}"
        listening = getattr(settings_from(monkeypatch, environment(services[door])), TOKEN_DOORS[door])
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "http" and parts.hostname == door, f"the screen calls {url}, not the {door} service"
        assert parts.port == listening, f"the screen calls {door} on {parts.port}; it listens on {listening}"
        assert parts.path == "" and not parts.query, f"{url}: the screen appends its paths to a bare address"
    depends = services["screen"].get("depends_on") or {}
    assert depends.get("worker", {}).get("condition") == "service_healthy"


# --- trust: logins, secrets, published ports and the ACL table ---------------------------------------------------

DEPLOY = ROOT / "deploy"
ACL_TABLE = DEPLOY / "kafka" / "acls.conf"
INIT_SCRIPT = DEPLOY / "kafka" / "init.sh"
MAKE_SECRETS = DEPLOY / "make-secrets.sh"
SECRETS_DIR = DEPLOY / "secrets"
GITIGNORE = ROOT / ".gitignore"
SUPER_USER = "admin"
TOKEN_DOORS = {"patrol": "http_port", "sink": "sink_query_port", "screen": "screen_port"}
"""The only gridhub services that may publish a port: each door answers bearer tokens only."""
KAFKA_OPERATIONS = {"Read", "Write", "Create", "Describe", "Delete", "Alter", "DescribeConfigs", "AlterConfigs"}
KAFKA_OPERATIONS |= {"ClusterAction", "IdempotentWrite", "CreateTokens", "DescribeTokens", "All"}
IMPLIED_DESCRIBE = {"Read", "Write", "Delete", "Alter", "Describe", "All"}


def kafka_listeners(env: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """Kafka's listeners as name -> (bind host, port, security protocol)."""
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {}
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://", 1)
        host, port = address.rsplit(":", 1)
        listeners[name] = (host, int(port), protocols[name])
    return listeners


def secret_mounts(service: dict[str, Any]) -> dict[str, str]:
    """The compose secrets a service mounts, as secret name -> path in the container."""
    mounts = {}
    for entry in service.get("secrets") or []:
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry.get("target"))
        target = target or source
        mounts[source] = target if target.startswith("/") else f"/run/secrets/{target}"
    return mounts


def gitignored(path: str) -> bool:
    """Whether .gitignore keeps a repository path out of git (last matching pattern wins)."""
    ignored = False
    for line in GITIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        anchored = "/" in pattern.lstrip("/")
        pattern = pattern.lstrip("/")
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
        if not anchored:
            candidates += list(parts)
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            ignored = not negated
    return ignored


Binding = tuple[str, str, str, str, str]
"""(principal, operation, resource type, pattern type, resource name): one ACL, as kafka-acls.sh adds it."""


def acl_bindings(text: str) -> set[Binding]:
    """The ACLs of the table in deploy/kafka/acls.conf: PRINCIPALS OPERATIONS RESOURCE PATTERN NAME..."""
    bindings: set[Binding] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) >= 5, f"acls.conf line {number} needs PRINCIPALS OPERATIONS RESOURCE PATTERN NAME...: {raw}"
        principals, operations, resource, pattern, names = fields[0], fields[1], fields[2], fields[3], fields[4:]
        assert resource in ("topic", "group", "cluster"), f"acls.conf line {number}: resource {resource}"
        assert pattern in ("literal", "prefixed"), f"acls.conf line {number}: pattern {pattern}"
        for principal in principals.split(","):
            for operation in operations.split(","):
                assert operation in KAFKA_OPERATIONS, f"acls.conf line {number}: no Kafka operation {operation}"
                bindings |= {(principal, operation, resource, pattern, name) for name in names}
    return bindings


def principals_of(bindings: set[Binding]) -> set[str]:
    return {principal for principal, *_ in bindings}


def allows(bindings: set[Binding], principal: str, operation: str, resource: str, name: str) -> bool:
    """Whether Kafka's StandardAuthorizer lets ``principal`` do ``operation`` (allow ACLs only, no deny)."""
    granting = {operation, "All"} | (IMPLIED_DESCRIBE if operation == "Describe" else set())
    return any(
        who == principal
        and what in granting
        and kind == resource
        and (name == pattern_name if pattern == "literal" else name.startswith(pattern_name))
        for who, what, kind, pattern, pattern_name in bindings
    )


@pytest.fixture(scope="module")
def bindings() -> set[Binding]:
    return acl_bindings(ACL_TABLE.read_text())


@pytest.fixture(scope="module")
def departments() -> list[str]:
    from streams.routing import load_rules

    return list(load_rules(Settings().routing_rules).departments)


@pytest.fixture(scope="module")
def streams_app() -> Any:
    """The Faust app as the worker builds it: its id (group, internal topic prefix) and its tables."""
    from streams.app import build_app

    return build_app(Settings(), "localhost:1")


def desk_group(department: str) -> str:
    """The consumer group the gateway reads a desk's work orders in, taken from the code that does it."""
    import connectors.work_orders as work_orders

    class Built(Exception):
        pass

    seen: dict[str, Any] = {}

    def consumer(**options: Any) -> None:
        seen.update(options)
        raise Built

    original = work_orders.KafkaConsumer
    work_orders.KafkaConsumer = consumer  # type: ignore[assignment,misc]
    try:
        with pytest.raises(Built):
            work_orders.WorkOrders("unused:9092", {}).read(department, None, "committed", 0)
    finally:
        work_orders.KafkaConsumer = original  # type: ignore[misc]
    return str(seen["group_id"])


def gridhub_services_using_kafka(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: services_of(compose)[name] for name in SERVICES}


def test_every_gridhub_service_logs_in_to_kafka_as_its_own_principal(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bindings: set[Binding]
) -> None:
    from foundation.kafka_security import kafka_python_options

    kafka_env = environment(services_of(compose)["kafka"])
    mechanisms = set(kafka_env["KAFKA_SASL_ENABLED_MECHANISMS"].split(","))
    users = {}
    for name, service in gridhub_services_using_kafka(compose).items():
        env = environment(service)
        assert "GRIDHUB_KAFKA_PASSWORD" not in env, f"{name}: a password in the compose file; use a secret file"
        settings = settings_from(monkeypatch, env)
        assert settings.kafka_security_protocol.startswith("SASL_"), f"{name} talks to Kafka without logging in"
        assert settings.kafka_sasl_mechanism in mechanisms, f"{name} uses {settings.kafka_sasl_mechanism}"
        assert settings.kafka_username, f"{name} has no GRIDHUB_KAFKA_USERNAME"
        users[name] = settings.kafka_username
        mounted = secret_mounts(service)
        password_file = str(settings.kafka_password_file)
        assert password_file in mounted.values(), f"{name} reads {password_file}, which is none of its secrets"
        assert settings.kafka_username in principals_of(bindings), f"{name}'s principal has no grant in acls.conf"
        # The options the clients get, once the secret is there.
        secret = tmp_path / name
        secret.write_text("s3cret\n")
        monkeypatch.setenv("GRIDHUB_KAFKA_PASSWORD_FILE", str(secret))
        options = kafka_python_options(Settings())
        assert options["sasl_plain_username"] == settings.kafka_username
        assert options["sasl_plain_password"] == "s3cret"
        assert options["security_protocol"] == settings.kafka_security_protocol
    assert len(set(users.values())) == len(users), f"services share a Kafka principal: {users}"
    assert SUPER_USER not in users.values(), "a service logs in as the super user"


def test_every_secret_is_a_git_ignored_file_under_deploy_secrets(compose: dict[str, Any]) -> None:
    declared = compose.get("secrets") or {}
    assert declared, "docker-compose.yml declares no secrets"
    for name, secret in declared.items():
        assert set(secret) == {"file"}, f"secret {name} must come from a file, not {sorted(secret)}"
        path = (ROOT / secret["file"]).resolve()
        assert path.parent == SECRETS_DIR, f"secret {name} is read from {secret['file']}, outside deploy/secrets"
        relative = path.relative_to(ROOT).as_posix()
        assert gitignored(relative), f"{relative} is not git-ignored"
        assert dockerignored(relative), f"{relative} would be sent into the image build"
        tracked = subprocess.run(["git", "ls-files", relative], cwd=ROOT, capture_output=True, text=True, check=False)
        assert not tracked.stdout.strip(), f"{relative} is in the repository"
    for name, service in services_of(compose).items():
        for secret in secret_mounts(service):
            assert secret in declared, f"{name} mounts undeclared secret {secret}"
        for variable in environment(service):
            if re.search(r"(PASSWORD|SECRET|TOKEN)$", variable):
                pytest.fail(f"{name} sets {variable} in the compose file; read it from a secret file instead")


def test_make_secrets_makes_exactly_the_declared_secrets_owner_only(compose: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    (copy / "kafka").mkdir(parents=True)
    script = copy / MAKE_SECRETS.name
    script.write_bytes(MAKE_SECRETS.read_bytes())
    (copy / "kafka" / ACL_TABLE.name).write_bytes(ACL_TABLE.read_bytes())
    run = subprocess.run(["sh", str(script)], env={**os.environ, "CHOWN": "no"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    made = {path.name: path for path in (copy / "secrets").iterdir()}
    declared = {Path(secret["file"]).name for secret in (compose.get("secrets") or {}).values()}
    assert set(made) == declared, f"make-secrets.sh makes {sorted(made)}, compose reads {sorted(declared)}"
    assert (copy / "secrets").stat().st_mode & 0o777 == 0o700
    passwords = set()
    for path in made.values():
        assert path.stat().st_mode & 0o777 == 0o600, f"{path.name} is readable by others"
        password = path.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}\n", password), f"{path.name} is not 64 random hex digits"
        passwords.add(password)
    assert len(passwords) == len(made), "two principals got the same password"
    again = subprocess.run(["sh", str(script)], env={**os.environ, "CHOWN": "no"}, capture_output=True, text=True)
    assert again.returncode == 0 and {path.read_text() for path in made.values()} == passwords, "a rerun changed them"
    rotated = subprocess.run(
        ["sh", str(script), "--rotate", "worker"], env={**os.environ, "CHOWN": "no"}, capture_output=True, text=True
    )
    assert rotated.returncode == 0, rotated.stderr
    assert made["worker.password"].read_text() not in passwords
    assert made["sink.password"].read_text() in passwords
    revoked = subprocess.run(
        ["sh", str(script), "--revoke", "desk-water"], env={**os.environ, "CHOWN": "no"}, capture_output=True, text=True
    )
    assert revoked.returncode == 0, revoked.stderr
    assert made["desk-water.password"].read_text() == "!revoked\n"
    refused = subprocess.run(["sh", str(script), "--revoke", "admin"], capture_output=True, text=True, check=False)
    assert refused.returncode != 0, "the super user cannot be revoked"


def test_make_secrets_gives_each_password_to_the_user_that_reads_it(
    compose: dict[str, Any], bindings: set[Binding]
) -> None:
    """Run make-secrets.sh's own owner_of: a service's password belongs to the image's user, or it cannot read it."""
    script = MAKE_SECRETS.read_text()
    function = re.search(r"^owner_of\(\) \{\n.*?^\}\n", script, re.MULTILINE | re.DOTALL)
    assert function, "make-secrets.sh has no owner_of function"
    image_uid = re.search(r"^GRIDHUB_IMAGE_UID=\$\{GRIDHUB_IMAGE_UID:-(\d+)\}$", script, re.MULTILINE)
    runs = " ".join(arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN")
    dockerfile_uid = re.search(r"useradd [^&;]*--uid (\d+)", runs)
    assert image_uid and dockerfile_uid and image_uid.group(1) == dockerfile_uid.group(1), "the image's uid differs"
    services = {
        environment(service)["GRIDHUB_KAFKA_USERNAME"] for service in gridhub_services_using_kafka(compose).values()
    }
    ids = {"KAFKA_UID": "1000", "GRIDHUB_IMAGE_UID": "10001", "OPERATOR_UID": "4242"}
    for principal in sorted(principals_of(bindings) | {SUPER_USER}):
        run = subprocess.run(
            ["sh", "-c", f'{function.group(0)}owner_of "$1"', "sh", principal],
            env={"PATH": os.environ["PATH"], **ids},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        user = (
            "KAFKA_UID" if principal == SUPER_USER else "GRIDHUB_IMAGE_UID" if principal in services else "OPERATOR_UID"
        )
        assert run.stdout.strip() == ids[user], f"{principal}'s password goes to {run.stdout.strip()}, not {user}"


def test_no_port_is_published_without_authentication(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in services_of(compose).items():
        ports = published_ports(service)
        if name == "kafka":
            by_port = {
                port: (listener, protocol)
                for listener, (_h, port, protocol) in kafka_listeners(environment(service)).items()
            }
            for _host_ip, _published, target in ports:
                listener, protocol = by_port[target]
                assert protocol.startswith("SASL_"), f"Kafka publishes {listener} ({protocol}) without SASL"
            continue
        if not ports:
            continue
        assert name in TOKEN_DOORS, f"{name} publishes {ports} but is not a token-protected door"
        settings = settings_from(monkeypatch, environment(service))
        assert {target for *_, target in ports} == {getattr(settings, TOKEN_DOORS[name])}


def test_kafka_authenticates_every_client_listener_and_authorises_by_acl(compose: dict[str, Any]) -> None:
    kafka = services_of(compose)["kafka"]
    env = environment(kafka)
    controllers = set(env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    for listener, (host, _port, protocol) in kafka_listeners(env).items():
        if listener in controllers:
            # PLAINTEXT (its principal is ANONYMOUS) only where nothing outside the container reaches it.
            assert host in ("localhost", "127.0.0.1"), f"the controller listener binds {host!r}"
            continue
        assert protocol.startswith("SASL_"), f"listener {listener} is {protocol}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] not in controllers
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert set(env["KAFKA_SUPER_USERS"].split(";")) == {f"User:{SUPER_USER}", "User:ANONYMOUS"}
    assert "kafka-admin" in secret_mounts(kafka), "the broker needs the super user's password for its JAAS file"
    entrypoint = kafka.get("entrypoint") or []
    script = next((part for part in entrypoint if part.endswith(".sh")), None)
    assert script, "kafka must start through deploy/kafka/broker.sh (JAAS file, SCRAM login at format time)"
    mounts = dict((target, source) for source, target in volume_mounts(kafka))
    folder = str(PurePosixPath(script).parent)
    assert folder in mounts and (ROOT / mounts[folder] / PurePosixPath(script).name).is_file()
    health = " ".join(healthcheck_argv(kafka) or [])
    assert "--command-config" in health, "the health check must log in like every client"


def test_kafka_init_creates_every_login_before_the_services_start(
    compose: dict[str, Any], bindings: set[Binding]
) -> None:
    services = services_of(compose)
    init = services["kafka-init"]
    assert not published_ports(init)
    assert (init.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy"
    expected = {f"kafka-{principal}" for principal in principals_of(bindings) | {SUPER_USER}}
    assert set(secret_mounts(init)) == expected, "kafka-init needs the password of every principal in acls.conf"
    for secret in expected:
        file = Path(compose["secrets"][secret]["file"]).name
        assert file == f"{secret.removeprefix('kafka-')}.password"
    for name in COMPOSED:
        depends = services[name].get("depends_on") or {}
        assert depends.get("kafka-init", {}).get("condition") == "service_completed_successfully", name


def test_only_the_worker_creates_topics_and_the_others_wait_for_it(
    compose: dict[str, Any], bindings: set[Binding]
) -> None:
    creators = {principal for principal, operation, *_ in bindings if operation in ("Create", "All")}
    assert creators == {"worker"}, f"who may create topics: {creators}"
    services = services_of(compose)
    for name in COMPOSED:
        if name != "worker":
            depends = services[name].get("depends_on") or {}
            assert depends.get("worker", {}).get("condition") == "service_healthy", f"{name} starts before the topics"


def test_every_gridhub_service_can_list_every_gridhub_topic(compose: dict[str, Any], bindings: set[Binding]) -> None:
    # Each service runs gridhub.broker.ensure_topics at start: a topic it cannot describe looks
    # missing, and creating it would be refused, which stops the service.
    from gridhub.broker import all_topics

    for name, service in gridhub_services_using_kafka(compose).items():
        user = environment(service)["GRIDHUB_KAFKA_USERNAME"]
        hidden = [topic for topic in all_topics(Settings()) if not allows(bindings, user, "Describe", "topic", topic)]
        assert not hidden, f"{name} ({user}) cannot see {hidden}"


def test_the_acl_table_grants_each_principal_only_its_own_topics(
    bindings: set[Binding], departments: list[str], streams_app: Any
) -> None:
    from gridhub.broker import all_topics
    from gridhub.screen.feed import FEED_TOPICS
    from schemas.topics import (
        APPLICATION_ALERTS,
        APPLICATION_CHANGES,
        BULK_SEEN,
        CANONICAL_BATCHES,
        CANONICAL_TOPICS,
        CASE_COMMANDS,
        DUPLICATES,
        ESCALATION_ALERTS,
        MATCH_DECISIONS,
        OVERDUE_ALERTS,
        RAW_APPROVALS,
        RAW_BATCHES,
        RAW_EXPORTS,
        RAW_PATROL,
        RAW_TOPICS,
        REJECTS,
        RUNS,
        canonical_topic,
        dispatch_topic,
        sink_topics,
        split_unit,
    )
    from streams.routing import load_rules

    app_id = streams_app.conf.id
    internal = {*streams_app.tables.changelog_topics, f"{app_id}-__assignor-__leader"}
    units = load_rules(Settings().routing_rules).desk_units()
    dispatch = {dispatch_topic(unit) for unit in units}
    future_dispatch = dispatch_topic("a-department-added-later")
    gridhub_topics = set(all_topics(Settings()))
    reads: dict[str, set[str]] = {
        # The worker reads its seen-rows memory back whole at start.
        "worker": {*RAW_TOPICS, RAW_BATCHES, CASE_COMMANDS, APPLICATION_CHANGES, BULK_SEEN, *internal},
        "sink": set(sink_topics()),
        # The gateway reads every desk's orders on the desk's behalf, a future department's too.
        "patrol": {canonical_topic("case"), *dispatch, future_dispatch},
        "approvals": set(),
        # The screen's live feed: new reports, case transitions and overdue alerts, taken from its code.
        "screen": set(FEED_TOPICS),
        "exports": set(),
        "review": set(),
    }
    writes: dict[str, set[str]] = {
        "worker": {
            *CANONICAL_TOPICS,
            CANONICAL_BATCHES,
            REJECTS,
            DUPLICATES,
            CASE_COMMANDS,
            APPLICATION_CHANGES,
            OVERDUE_ALERTS,
            ESCALATION_ALERTS,
            APPLICATION_ALERTS,
            BULK_SEEN,
            *dispatch,
            future_dispatch,
            *internal,
        },
        "sink": set(),
        # A connector writes its raw topic, what it cannot even wrap as a reject, and its runs' notices.
        "patrol": {RAW_PATROL},
        "approvals": {RAW_APPROVALS, REJECTS, RUNS},
        # The screen acts on cases only through the patrol gateway, as the commander.
        "screen": set(),
        "exports": {RAW_EXPORTS, RAW_BATCHES, REJECTS, RUNS},
        # The command centre's review decisions (gridhub review merge/separate), for the sink.
        "review": {MATCH_DECISIONS},
    }
    for department in departments:
        # A department's own system reads its topic and those of its squads (the enforcement bureau's).
        reads[f"desk-{department}"] = {dispatch_topic(unit) for unit in units if split_unit(unit)[0] == department}
        writes[f"desk-{department}"] = set()
    assert principals_of(bindings) == set(reads), "acls.conf names other principals than gridhub's services and desks"
    assert SUPER_USER not in principals_of(bindings)

    foreign = {"__consumer_offsets", "__transaction_state", "raw", "canonical", "dispatch", "other.topic", "x.raw."}
    ours = gridhub_topics | internal | {future_dispatch}
    universe = ours | foreign | {"gridhub-streams"}
    for principal in sorted(reads):
        for topic in sorted(universe):
            can_read = allows(bindings, principal, "Read", "topic", topic)
            can_write = allows(bindings, principal, "Write", "topic", topic)
            assert can_read == (topic in reads[principal]), f"{principal} read {topic}: {can_read}"
            assert can_write == (topic in writes[principal]), f"{principal} write {topic}: {can_write}"
            if allows(bindings, principal, "Describe", "topic", topic):
                assert topic in ours, f"{principal} sees {topic}"
            if allows(bindings, principal, "Create", "topic", topic):
                assert principal == "worker" and topic in ours, f"{principal} creates {topic}"
        for operation in ("Delete", "Alter", "AlterConfigs", "All", "ClusterAction", "IdempotentWrite"):
            assert not any(who == principal and what == operation for who, what, *_ in bindings), (
                f"{principal} may {operation}"
            )
    assert not any(resource == "cluster" for _p, _o, resource, _t, _n in bindings), "no principal needs the cluster"
    assert not any(name in ("*", "") for *_, name in bindings), "a grant on every resource"


def test_the_acl_table_gives_each_group_to_its_reader_only(
    bindings: set[Binding], departments: list[str], streams_app: Any
) -> None:
    groups: dict[str, set[str]] = {"worker": {streams_app.conf.id}}
    desk_groups = {department: desk_group(department) for department in departments}
    groups["patrol"] = set(desk_groups.values())  # the gateway reads the desks' orders on their behalf
    for department, group in desk_groups.items():
        groups[f"desk-{department}"] = {group}
    universe = {*streams_app.conf.id.split(), *desk_groups.values(), "gridhub-sink", "other-group", "gridhub-desk"}
    for principal in principals_of(bindings):
        for group in sorted(universe):
            allowed = allows(bindings, principal, "Read", "group", group)
            assert allowed == (group in groups.get(principal, set())), f"{principal} group {group}: {allowed}"


def test_the_screens_feed_reads_without_a_group_so_it_needs_none(
    bindings: set[Binding], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open the live feed's consumer as the screen does and read its options: no group, nothing committed."""
    import gridhub.screen.feed as feed

    class Built(Exception):
        pass

    seen: dict[str, Any] = {}

    def consumer(*topics: str, **options: Any) -> None:
        seen.update(options, topics=topics)
        raise Built

    monkeypatch.setattr(feed, "AIOKafkaConsumer", consumer)
    with pytest.raises(Built):
        asyncio.run(feed.LiveFeed(Settings(), "unused:9092")._follow())
    assert seen["group_id"] is None and seen["topics"] == (), "the feed assigns its partitions itself"
    assert seen.get("enable_auto_commit") is False
    assert not any(principal == "screen" and resource == "group" for principal, _o, resource, *_ in bindings)


def test_kafka_init_applies_the_acl_table_as_written(tmp_path: Path, bindings: set[Binding]) -> None:
    """Run deploy/kafka/init.sh against stand-ins of kafka-configs.sh and kafka-acls.sh and read what it asked."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    tools, secrets, calls = tmp_path / "bin", tmp_path / "secrets", tmp_path / "calls"
    tools.mkdir()
    secrets.mkdir()
    calls.mkdir()
    for tool in ("kafka-configs.sh", "kafka-acls.sh"):
        stand_in = tools / tool
        stand_in.write_text(
            f'#!/bin/sh\nf=$(mktemp "{calls}/{tool}.XXXXXX")\nfor a in "$@"; do printf "%s\\n" "$a"; done >"$f"\n'
            'for a in "$@"; do case "$prev" in --add-config-file) cat "$a" >>"$f.config";; esac; prev=$a; done\n'
        )
        stand_in.chmod(0o755)
    for principal in principals_of(bindings) | {SUPER_USER}:
        (secrets / f"kafka-{principal}").write_text(f"pw-{principal}\n")
    revoked = "desk-water"
    (secrets / f"kafka-{revoked}").write_text("!revoked\n")  # deploy/make-secrets.sh --revoke desk-water
    run = subprocess.run(
        [bash, str(INIT_SCRIPT)],
        env={"PATH": os.environ["PATH"], "TOOLS_DIR": str(tools), "SECRETS_DIR": str(secrets)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    logins: dict[str, str] = {}
    deleted: set[str] = set()
    applied: set[Binding] = set()
    for call in calls.iterdir():
        if call.name.endswith(".config"):
            continue
        argv = call.read_text().splitlines()
        options: dict[str, list[str]] = {}
        for flag, value in zip(argv, [*argv[1:], ""], strict=True):
            if flag.startswith("--"):
                options.setdefault(flag, []).append(value)
        assert options["--command-config"], "every call logs in as admin"
        if call.name.startswith("kafka-configs.sh"):
            assert "--add-config" not in options, "a password on a command line"
            if "--delete-config" in options:
                assert options["--delete-config"] == ["SCRAM-SHA-512"]
                deleted.add(options["--entity-name"][0])
            else:
                logins[options["--entity-name"][0]] = Path(f"{call}.config").read_text()
            continue
        assert "--add" in argv
        resource, names = ("topic", options["--topic"]) if "--topic" in options else ("group", options["--group"])
        pattern = options["--resource-pattern-type"][0]
        for principal in options["--allow-principal"]:
            for operation in options["--operation"]:
                applied |= {(principal.removeprefix("User:"), operation, resource, pattern, name) for name in names}
    assert set(logins) == principals_of(bindings) - {revoked}
    assert deleted == {revoked}, "a revoked principal's login is deleted, never set"
    for principal, config in logins.items():
        assert config == f"SCRAM-SHA-512=iterations=8192,password=pw-{principal}\n"
    assert applied == bindings


def test_the_token_doors_share_one_token_book(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    services = services_of(compose)
    books = {}
    for name in TOKEN_DOORS:
        settings = settings_from(monkeypatch, environment(services[name]))
        book = PurePosixPath(settings.tokens_file)
        volume = next(
            (source for source, target in volume_mounts(services[name]) if source and book.is_relative_to(target)),
            None,
        )
        assert volume and volume in (compose.get("volumes") or {}), f"{name}'s token book {book} is on no named volume"
        books[name] = (volume, book)
    assert len(set(books.values())) == 1, f"the doors read different token books: {books}"
    for name in set(COMPOSED) - set(TOKEN_DOORS):
        mounted = {source for source, _target in volume_mounts(services[name])}
        assert next(iter(books.values()))[0] not in mounted, f"{name} has no business with the token book"


# --- the health-check commands, run for real ----------------------------------------------------------------------


def run_check(argv: list[str], replace: dict[str, str] | None = None, env: dict[str, str] | None = None) -> int:
    assert argv[0] == "python", f"health checks run the image's python, not {argv[0]}"
    argv = [sys.executable, *argv[1:]]
    for old, new in (replace or {}).items():
        argv = [part.replace(old, new) for part in argv]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(PREFIX)}
    return subprocess.run(argv, env={**clean, **(env or {})}, capture_output=True, timeout=60, check=False).returncode


def served(app: Any) -> Iterator[int]:
    """Serve an aiohttp application on a free port from a thread of its own; yields the port."""
    from aiohttp import web

    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture
def patrol_gateway(tmp_path: Path) -> Iterator[int]:
    """The real patrol gateway application on a free port (no Kafka needed for /healthz)."""

    from connectors.patrol_http import Limits, PatrolGateway
    from connectors.photos import PhotoStore
    from foundation.access import doorkeeper_of
    from schemas.grid import Grid
    from streams.routing import load_rules

    gateway = PatrolGateway(
        None,  # type: ignore[arg-type]  # /healthz never publishes
        load_rules(Settings().routing_rules),
        Grid.load(Settings().grid_path),
        PhotoStore(Path("/nonexistent"), 1024),
        Limits(record_bytes=1024, photos=1, track_points=1),
        doorkeeper_of(Settings(data_dir=tmp_path)),
    )
    yield from served(gateway.application())


@pytest.fixture
def sink_endpoint(tmp_path: Path) -> Iterator[int]:
    """The real read-only SQL endpoint on a free port."""
    import duckdb

    from foundation.access import doorkeeper_of
    from warehouse.query_server import QueryLimits, QueryServer

    connection = duckdb.connect()
    server = QueryServer(connection, "127.0.0.1", 0, QueryLimits(), doorkeeper_of(Settings(data_dir=tmp_path)))
    server.start()
    try:
        yield server.server.server_address[1]
    finally:
        server.stop()
        connection.close()


@pytest.fixture
def screen_server(tmp_path: Path) -> Iterator[int]:
    """The real screen application on a free port (its page needs neither Kafka, nor the sink, nor a token)."""

    from foundation.access import doorkeeper_of
    from gridhub.screen.feed import LiveFeed
    from gridhub.screen.server import ScreenService
    from schemas.grid import Grid

    settings = Settings(data_dir=tmp_path)
    screen = ScreenService(
        settings, doorkeeper_of(settings), Grid.load(settings.grid_path), LiveFeed(settings, "unused:9092"), {}
    )
    yield from served(screen.application())


def test_screen_health_check_passes_against_the_screen_and_fails_without_it(
    compose: dict[str, Any], screen_server: int
) -> None:
    argv = healthcheck_argv(services_of(compose)["screen"])
    assert argv
    configured = environment(services_of(compose)["screen"])["GRIDHUB_SCREEN_PORT"]
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{screen_server}"}) == 0
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{free_port()}"}) != 0
    # The probe must not need a token (compose has none to give it); what is behind one refuses it.
    probe = argv[-1].replace(f"127.0.0.1:{configured}/", f"127.0.0.1:{screen_server}/api/me")
    assert probe != argv[-1] and run_check([*argv[:-1], probe]) != 0, "the screen's API answered without a token"


def test_patrol_health_check_passes_against_the_gateway_and_fails_without_it(
    compose: dict[str, Any], patrol_gateway: int
) -> None:
    argv = healthcheck_argv(services_of(compose)["patrol"])
    assert argv
    configured = environment(services_of(compose)["patrol"])["GRIDHUB_HTTP_PORT"]
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{patrol_gateway}"}) == 0
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{free_port()}"}) != 0


def test_sink_health_check_passes_against_the_sql_endpoint_and_fails_without_it(
    compose: dict[str, Any], sink_endpoint: int
) -> None:
    argv = healthcheck_argv(services_of(compose)["sink"])
    assert argv
    configured = environment(services_of(compose)["sink"])["GRIDHUB_SINK_QUERY_PORT"]
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{sink_endpoint}"}) == 0
    assert run_check(argv, {f"127.0.0.1:{configured}": f"127.0.0.1:{free_port()}"}) != 0


@pytest.mark.parametrize("name", [name for name in COMPOSED if name in ("worker", "approvals", "watch", "pull")])
def test_announcement_health_check_follows_the_services_run_file(
    compose: dict[str, Any], tmp_path: Path, name: str
) -> None:
    argv = healthcheck_argv(services_of(compose)[name])
    assert argv
    env = {"GRIDHUB_DATA_DIR": str(tmp_path)}
    assert run_check(argv, env=env) != 0, "healthy before the service announced itself"
    settings = Settings(data_dir=tmp_path)
    other = next(service for service in SERVICES if service != name)
    runfiles.announce(settings, other)
    assert run_check(argv, env=env) != 0, f"{name}'s check is satisfied by {other}'s announcement"
    runfiles.announce(settings, name)  # this test process stands in for the live service
    assert run_check(argv, env=env) == 0
    runfiles.withdraw(settings, name)
    assert run_check(argv, env=env) != 0, "still healthy after the service withdrew"


# --- the Dockerfile -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", WHEEL_PACKAGES)
def test_dockerfile_copies_every_wheel_package(package: str) -> None:
    sources = copy_sources()
    assert package in sources or "." in sources, f"the image lacks package {package} (COPY sources: {sources})"
    assert not dockerignored(package), f".dockerignore keeps {package} out of the build context"
    assert not dockerignored(f"{package}/__init__.py")


@pytest.mark.parametrize("path", ["pyproject.toml", "uv.lock", PYPROJECT["project"]["readme"]])
def test_dockerfile_copies_what_uv_sync_needs(path: str) -> None:
    sources = copy_sources()
    assert path in sources or "." in sources, f"the image lacks {path}"
    assert not dockerignored(path), f".dockerignore keeps {path} out of the build context"


def test_dockerignore_keeps_tests_and_local_state_out() -> None:
    for path in (".git", ".venv", "gridhub-data", "gridhub-data/warehouse.duckdb", "tests"):
        assert dockerignored(path), f"{path} would be sent into the image build"


def test_dockerfile_base_image_satisfies_requires_python() -> None:
    base = next(arguments for keyword, arguments in dockerfile_instructions() if keyword == "FROM")
    match = re.fullmatch(r"python:(\d+\.\d+)-slim", base)
    assert match, f"base image should be python:X.Y-slim, not {base}"
    assert match.group(1) in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_dockerfile_installs_the_lock_without_dev_tools() -> None:
    runs = ";".join(arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN")
    assert re.search(r"pip install [^&;]*\buv==\d+\.\d+\.\d+", runs), "uv must be pinned"
    syncs = re.findall(r"uv sync[^&;]*", runs)
    assert syncs and all("--frozen" in sync and "--no-dev" in sync for sync in syncs), syncs
    assert any("--no-install-project" not in sync for sync in syncs), "the project itself is never installed"


def test_dockerfile_runs_gridhub_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    entrypoint = [arguments for keyword, arguments in instructions if keyword == "ENTRYPOINT"]
    assert entrypoint and exec_form(entrypoint[-1]) == ["gridhub"]
    assert PYPROJECT["project"]["scripts"].get("gridhub"), "ENTRYPOINT gridhub needs the gridhub console script"
    paths = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert re.search(r"PATH=\S*\.venv/bin", paths), "the venv's bin directory must be on PATH"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`GRIDHUB_{name.upper()}`" not in readme]
    assert missing == [], f"README settings table lacks: {missing}"
