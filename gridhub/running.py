"""Where the running hub is, for commands that talk to it: its Kafka address, its patrol gateway, a publisher."""

from __future__ import annotations

from connectors.publisher import RawPublisher
from foundation import runfiles
from foundation.errors import RetryableError
from foundation.settings import Settings


class HubNotRunning(RetryableError):
    """No running gridhub answers for this data dir; start it (or point at it) and try again."""


def running_bootstrap(settings: Settings) -> str:
    """The configured Kafka address, or the one a local ``gridhub up`` announced."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    broker = runfiles.discover(settings, "broker")
    if broker is None:
        raise HubNotRunning(
            f"no running gridhub found in {settings.data_dir}: start `gridhub up` first or set GRIDHUB_KAFKA_BOOTSTRAP"
        )
    return str(broker["bootstrap"])


def running_gateway(settings: Settings) -> str:
    """The configured patrol gateway URL, or the one a local ``gridhub up`` announced."""
    gateway = settings.patrol_url or (runfiles.discover(settings, "patrol") or {}).get("url")
    if not gateway:
        raise HubNotRunning("no running patrol gateway found: start `gridhub up` or set GRIDHUB_PATROL_URL")
    return str(gateway)


def hub_publisher(settings: Settings, door: str) -> RawPublisher:
    """A journaling publisher to the running hub (or the configured cluster), as the door ``door``."""
    return RawPublisher.for_door(settings, running_bootstrap(settings), door)
