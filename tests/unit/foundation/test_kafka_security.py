"""Kafka logins: each client library gets the same SASL/SCRAM login, and a missing piece stops with one line.

The first half checks foundation.kafka_security against the settings; the second, that every place
gridhub builds a Kafka client hands the options on (each client class replaced by a recorder).
"""

from __future__ import annotations

import inspect
import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest

from foundation.errors import ConfigurationError
from foundation.kafka_security import aiokafka_options, faust_credentials, kafka_login, kafka_python_options
from foundation.settings import Settings

CA_BUNDLE = Path(certifi.where())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the test's arguments only, never from the shell that runs the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("GRIDHUB_"):
            monkeypatch.delenv(name)


def secret(tmp_path: Path, text: str = "s3cret-pw\n", name: str = "kafka-worker") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def sasl(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "kafka_bootstrap": "kafka:9092",
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_username": "worker",
    }
    if "kafka_password_file" not in overrides:
        fields["kafka_password_file"] = secret(tmp_path, name="kafka-default")
    return Settings(**{**fields, **overrides})


def refusal(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as caught:
        kafka_python_options(settings)
    message = str(caught.value)
    assert "\n" not in message, "a configuration error is one line"
    for build in (aiokafka_options, faust_credentials):  # every library refuses the same way
        with pytest.raises(ConfigurationError, match=r".+"):
            build(settings)
    return message


# --- PLAINTEXT: nothing changes --------------------------------------------------------------------------------


def test_plaintext_adds_nothing_to_any_client() -> None:
    settings = Settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert kafka_login(settings) is None
    assert kafka_python_options(settings) == {}
    assert aiokafka_options(settings) == {}
    assert faust_credentials(settings) is None


def test_plaintext_ignores_a_username_left_in_the_environment(tmp_path: Path) -> None:
    settings = Settings(kafka_username="worker", kafka_password_file=tmp_path / "absent")
    assert kafka_python_options(settings) == {}


# --- SASL: the login ---------------------------------------------------------------------------------------------


def test_sasl_plaintext_gives_kafka_python_a_scram_login(tmp_path: Path) -> None:
    assert kafka_python_options(sasl(tmp_path)) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret-pw",
    }


def test_aiokafka_gets_the_same_login(tmp_path: Path) -> None:
    assert aiokafka_options(sasl(tmp_path)) == kafka_python_options(sasl(tmp_path))


@pytest.mark.parametrize(
    ("text", "password"),
    [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), ("two words\n", "two words"), (" pw \n", " pw ")],
)
def test_the_password_file_loses_only_its_trailing_newline(tmp_path: Path, text: str, password: str) -> None:
    settings = sasl(tmp_path, kafka_password_file=secret(tmp_path, text))
    assert kafka_python_options(settings)["sasl_plain_password"] == password


def test_the_password_may_come_from_the_environment(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_password_file=None, kafka_password="from-env")
    assert kafka_python_options(settings)["sasl_plain_password"] == "from-env"


def test_the_sha_256_mechanism_is_passed_through(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_sasl_mechanism="SCRAM-SHA-256")
    assert kafka_python_options(settings)["sasl_mechanism"] == "SCRAM-SHA-256"
    assert faust_credentials(settings).mechanism.value == "SCRAM-SHA-256"  # type: ignore[union-attr]


def test_the_settings_read_the_login_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDHUB_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("GRIDHUB_KAFKA_USERNAME", "patrol")
    monkeypatch.setenv("GRIDHUB_KAFKA_PASSWORD_FILE", str(secret(tmp_path, "pw\n")))
    assert kafka_python_options(Settings())["sasl_plain_username"] == "patrol"


def test_the_login_never_shows_its_password(tmp_path: Path) -> None:
    login = kafka_login(sasl(tmp_path))
    assert login is not None and login.password == "s3cret-pw"
    assert "s3cret" not in repr(login) and "s3cret" not in str(login)
    assert "s3cret" not in repr(faust_credentials(sasl(tmp_path)))


# --- SASL: what is missing is named ------------------------------------------------------------------------------


def test_sasl_without_a_username_names_the_variable(tmp_path: Path) -> None:
    message = refusal(sasl(tmp_path, kafka_username=None))
    assert "GRIDHUB_KAFKA_USERNAME" in message


def test_sasl_without_a_password_names_the_file_variable(tmp_path: Path) -> None:
    message = refusal(sasl(tmp_path, kafka_password_file=None))
    assert "GRIDHUB_KAFKA_PASSWORD_FILE" in message and "'worker'" in message


def test_a_missing_password_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    absent = tmp_path / "run" / "secrets" / "kafka-worker"
    message = refusal(sasl(tmp_path, kafka_password_file=absent))
    assert f"GRIDHUB_KAFKA_PASSWORD_FILE={absent}" in message and "no such file" in message


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    message = refusal(sasl(tmp_path, kafka_password_file=secret(tmp_path, "\n")))
    assert "GRIDHUB_KAFKA_PASSWORD_FILE" in message and "empty" in message


def test_an_unreadable_password_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    message = refusal(sasl(tmp_path, kafka_password_file=folder))  # reading a folder fails like a denied file
    assert f"GRIDHUB_KAFKA_PASSWORD_FILE={folder} cannot be read" in message


def test_both_password_sources_at_once_are_refused(tmp_path: Path) -> None:
    message = refusal(sasl(tmp_path, kafka_password="also"))
    assert "GRIDHUB_KAFKA_PASSWORD " in message and "GRIDHUB_KAFKA_PASSWORD_FILE" in message


# --- SASL_SSL ------------------------------------------------------------------------------------------------------


def test_sasl_ssl_checks_the_brokers_certificates_in_every_library(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=CA_BUNDLE)
    python = kafka_python_options(settings)
    assert python["security_protocol"] == "SASL_SSL"
    assert python["ssl_cafile"] == str(CA_BUNDLE) and python["ssl_check_hostname"] is True
    context = aiokafka_options(settings)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs(), "the CA bundle was not loaded"
    credentials = faust_credentials(settings)
    assert credentials is not None
    assert credentials.protocol.value == "SASL_SSL" and credentials.ssl_context is not None


def test_sasl_ssl_without_a_ca_file_trusts_the_systems_authorities(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_security_protocol="SASL_SSL")
    assert "ssl_cafile" not in kafka_python_options(settings)
    assert aiokafka_options(settings)["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_a_missing_ca_file_names_the_variable(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=tmp_path / "ca.pem")
    assert "GRIDHUB_KAFKA_SSL_CAFILE" in refusal(settings)


def test_a_ca_file_that_is_no_certificate_names_the_variable(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    settings = sasl(tmp_path, kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=bogus)
    with pytest.raises(ConfigurationError, match="GRIDHUB_KAFKA_SSL_CAFILE"):
        aiokafka_options(settings)


def test_sasl_plaintext_uses_no_tls(tmp_path: Path) -> None:
    settings = sasl(tmp_path, kafka_ssl_cafile=CA_BUNDLE)
    assert not any(key.startswith("ssl") for key in kafka_python_options(settings))
    assert "ssl_context" not in aiokafka_options(settings)
    credentials = faust_credentials(settings)
    assert credentials is not None and credentials.protocol.value == "SASL_PLAINTEXT"


# --- the options fit the libraries -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_every_kafka_python_client_knows_every_option(tmp_path: Path, protocol: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient

    options = kafka_python_options(sasl(tmp_path, kafka_security_protocol=protocol, kafka_ssl_cafile=CA_BUNDLE))
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(options) <= set(client.DEFAULT_CONFIG), (
            f"{client.__name__}: {set(options) - set(client.DEFAULT_CONFIG)}"
        )


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_every_aiokafka_client_knows_every_option(tmp_path: Path, protocol: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    options = aiokafka_options(sasl(tmp_path, kafka_security_protocol=protocol))
    for client in (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient):
        parameters = set(inspect.signature(client.__init__).parameters)
        assert set(options) <= parameters, f"{client.__name__}: {set(options) - parameters}"


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_hands_aiokafka_the_same_login(tmp_path: Path, protocol: str) -> None:
    import faust
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = sasl(tmp_path, kafka_security_protocol=protocol)
    app = faust.App("test-kafka-security", broker="kafka://kafka:9092", broker_credentials=faust_credentials(settings))
    handed = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))
    ours = aiokafka_options(settings)
    if protocol == "SASL_SSL":
        assert isinstance(handed.pop("ssl_context"), ssl.SSLContext)
        ours.pop("ssl_context")
    else:
        assert handed.pop("ssl_context") is None
    assert handed == ours


# --- every client gridhub builds gets them -------------------------------------------------------------------------


class Recorder:
    """Stands in for a Kafka client class: records the keyword arguments of each instance."""

    def __init__(self) -> None:
        self.built: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.built.append(kwargs)
        return self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: []


def assert_logged_in(options: dict[str, Any], settings: Settings) -> None:
    expected = kafka_python_options(settings)
    assert {key: options.get(key) for key in expected} == expected


def test_the_doors_publisher_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.publisher as publisher

    recorder = Recorder()
    monkeypatch.setattr(publisher, "KafkaProducer", recorder)
    settings = sasl(tmp_path, data_dir=tmp_path, journal=False)
    publisher.RawPublisher.for_door(settings, "kafka:9092", "patrol")
    assert_logged_in(recorder.built[-1], settings)
    assert recorder.built[-1]["acks"] == "all", "the login must not replace the producer's own options"


def test_the_sink_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warehouse.sink as sink

    recorder = Recorder()
    monkeypatch.setattr(sink, "KafkaConsumer", recorder)
    settings = sasl(tmp_path)
    sink.Sink(settings, "kafka:9092", None, None, {})  # type: ignore[arg-type]
    assert_logged_in(recorder.built[-1], settings)


def test_topic_administration_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridhub.broker as broker

    recorder = Recorder()
    monkeypatch.setattr(broker, "KafkaAdminClient", recorder)
    settings = sasl(tmp_path)
    broker.ensure_topics(settings, "kafka:9092")
    assert_logged_in(recorder.built[-1], settings)
    broker.topic_ids("kafka:9092", ["raw.patrol"], kafka_python_options(settings))
    assert_logged_in(recorder.built[-1], settings)


def test_the_case_view_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.case_view as case_view
    from streams.case_flow import load_flow

    recorder = Recorder()
    monkeypatch.setattr(case_view, "KafkaConsumer", recorder)
    settings = sasl(tmp_path)
    view = case_view.CaseView("kafka:9092", load_flow(), kafka_python_options(settings))
    view._stop.set()
    view._follow()
    assert_logged_in(recorder.built[-1], settings)


def test_the_stream_worker_logs_in(tmp_path: Path) -> None:
    from streams.app import build_app

    app = build_app(sasl(tmp_path, data_dir=tmp_path), "kafka:9092")
    credentials = app.conf.broker_credentials
    assert credentials is not None and credentials.username == "worker" and credentials.password == "s3cret-pw"
    assert build_app(Settings(data_dir=tmp_path), "kafka:9092").conf.broker_credentials is None
