"""Export the record contracts as JSON Schema, the form publishers' tools understand."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import SCHEMA_VERSION
from schemas.records import CANONICAL_MODELS, RawEnvelope
from schemas.rejects import Reject


def export_json_schemas(folder: Path) -> list[Path]:
    """Write ``<kind>.v<version>.schema.json`` for every canonical record, the raw envelope and the reject."""
    folder.mkdir(parents=True, exist_ok=True)
    models = {**CANONICAL_MODELS, "raw_envelope": RawEnvelope, "reject": Reject}
    written = []
    for name, model in models.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://gridhub.example/schemas/{name}.v{SCHEMA_VERSION}.schema.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = folder / f"{name}.v{SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
