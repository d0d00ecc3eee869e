"""How every Kafka client of gridhub proves who it is: SASL/SCRAM options for each client library.

gridhub talks to Kafka through three libraries, and each spells the same credentials its own
way: kafka-python (the doors, the sink, topic administration), aiokafka (the benchmarks) and
Faust (the stream worker, which hands them on to aiokafka). The settings name them once
(``GRIDHUB_KAFKA_SECURITY_PROTOCOL``, ``_SASL_MECHANISM``, ``_USERNAME``, ``_PASSWORD`` or
``_PASSWORD_FILE``, ``_SSL_CAFILE``); the functions here translate them, so every place that
builds a client adds ``**kafka_python_options(settings)`` (or its sibling) and nothing else.

With the default ``PLAINTEXT`` every function returns "nothing to add" ({} or None), so the
embedded broker and the tests run exactly as before. With ``SASL_PLAINTEXT`` or ``SASL_SSL``
a missing username, password or file stops the process with one
:class:`~foundation.errors.ConfigurationError` line naming the variable to set.

The password is read from ``GRIDHUB_KAFKA_PASSWORD_FILE`` (a Docker secret; its trailing
newline is dropped) or taken from ``GRIDHUB_KAFKA_PASSWORD``, never both; it is read when a
client is built, so a rotated password takes effect when the service restarts.
``GRIDHUB_KAFKA_SSL_CAFILE`` applies only to ``SASL_SSL`` (the brokers' certificates are checked
against it, else against the system's trusted authorities).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.errors import ConfigurationError
from foundation.settings import Settings

if TYPE_CHECKING:
    from faust.auth import SASLCredentials

PREFIX = "GRIDHUB_KAFKA_"


@dataclass(frozen=True, repr=False)
class KafkaLogin:
    """One service's SASL login, resolved from the settings (the password read from its file)."""

    protocol: str
    mechanism: str
    username: str
    password: str
    cafile: Path | None

    def __repr__(self) -> str:  # never print the password
        return f"KafkaLogin({self.protocol}, {self.mechanism}, user={self.username!r})"

    @property
    def uses_tls(self) -> bool:
        return self.protocol == "SASL_SSL"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that checks the brokers' certificates and host names."""
        try:
            return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"{PREFIX}SSL_CAFILE={self.cafile} cannot be used as a CA bundle ({exc}); "
                "point it at the PEM file of the authority that signed the brokers' certificates"
            ) from exc


def kafka_login(settings: Settings) -> KafkaLogin | None:
    """The SASL login these settings describe, or None for ``PLAINTEXT`` (no authentication)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if not settings.kafka_username:
        raise ConfigurationError(
            f"{PREFIX}SECURITY_PROTOCOL={protocol} needs {PREFIX}USERNAME: set it to this service's Kafka principal"
        )
    cafile = settings.kafka_ssl_cafile if protocol == "SASL_SSL" else None
    if cafile is not None and not cafile.is_file():
        raise ConfigurationError(
            f"{PREFIX}SSL_CAFILE={cafile}: no such file; set it to the CA bundle that signed the brokers' certificates"
        )
    return KafkaLogin(protocol, settings.kafka_sasl_mechanism, settings.kafka_username, _password(settings), cafile)


def _password(settings: Settings) -> str:
    given, path = settings.kafka_password, settings.kafka_password_file
    if given is not None and path is not None:
        raise ConfigurationError(
            f"both {PREFIX}PASSWORD and {PREFIX}PASSWORD_FILE are set; keep only {PREFIX}PASSWORD_FILE, the secret file"
        )
    if path is not None:
        return _read_password_file(path)
    if given is not None and given.get_secret_value():
        return given.get_secret_value()
    raise ConfigurationError(
        f"{PREFIX}SECURITY_PROTOCOL={settings.kafka_security_protocol} needs a password for "
        f"{settings.kafka_username!r}: set {PREFIX}PASSWORD_FILE to the file holding it (or {PREFIX}PASSWORD)"
    )


def _read_password_file(path: Path) -> str:
    variable = f"{PREFIX}PASSWORD_FILE={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"{variable}: no such file; create the secret (deploy/make-secrets.sh) or point "
            f"{PREFIX}PASSWORD_FILE at the file holding this service's Kafka password"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{variable} cannot be read ({type(exc).__name__}: {exc}); this process's user must be able to read it"
        ) from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigurationError(f"{variable} is empty; write this service's Kafka password into it")
    return password


def _sasl_options(login: KafkaLogin) -> dict[str, Any]:
    """The login as both kafka-python and aiokafka name it (they differ only in how TLS is given)."""
    return {
        "security_protocol": login.protocol,
        "sasl_mechanism": login.mechanism,
        "sasl_plain_username": login.username,
        "sasl_plain_password": login.password,
    }


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    login = kafka_login(settings)
    if login is None:
        return {}
    options = _sasl_options(login)
    if login.uses_tls:
        options["ssl_check_hostname"] = True
        if login.cafile is not None:
            options["ssl_cafile"] = str(login.cafile)
    return options


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient.

    aiokafka takes TLS settings only as an ``ssl_context`` (it refuses ``SASL_SSL`` without one).
    """
    login = kafka_login(settings)
    if login is None:
        return {}
    options = _sasl_options(login)
    if login.uses_tls:
        options["ssl_context"] = login.ssl_context()
    return options


def faust_credentials(settings: Settings) -> SASLCredentials | None:
    """The ``broker_credentials`` of the Faust app: SASL (over TLS for ``SASL_SSL``), or None for PLAINTEXT.

    Faust derives the protocol from the credentials: SASL_SSL exactly when they carry a TLS context.
    """
    login = kafka_login(settings)
    if login is None:
        return None
    from faust.auth import SASLCredentials  # the stream layer's dependency, imported only when asked for

    return SASLCredentials(
        username=login.username,
        password=login.password,
        mechanism=login.mechanism,
        ssl_context=login.ssl_context() if login.uses_tls else None,
    )
