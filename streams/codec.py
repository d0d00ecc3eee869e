"""How the agents see Kafka messages: raw bytes, so decoding failures reach the agent.

A value Faust fails to deserialize is acknowledged before any agent runs, which would drop
it silently; with raw bytes every agent decodes itself and turns failures into rejects.
"""

from typing import Any

RAW_CODEC: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
