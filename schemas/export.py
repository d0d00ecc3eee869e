"""Export the record contracts as JSON Schema, the form publishers' tools understand."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.records import CANONICAL_MODELS, RawEnvelope
from schemas.rejects import Reject
from schemas.versions import CONTRACTS


def export_json_schemas(folder: Path) -> list[Path]:
    """Write ``<kind>.v<version>.schema.json`` for every canonical record, the raw envelope and the reject.

    Each contract has its own version (:mod:`schemas.versions`), in its file's name and ``$id``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    models = {**CANONICAL_MODELS, "raw_envelope": RawEnvelope, "reject": Reject}
    written = []
    for name, model in models.items():
        filename = f"{name}.v{CONTRACTS[name].version}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"https://gridhub.example/schemas/{filename}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = folder / filename
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
