"""Reading gridhub's YAML data files: one way to fail, one line naming the file and the fix.

Routing rules, resolution rules, mappings, catalogues and source lists are all
edited by hand by a town's staff, so every reader reports a problem the same way:
which file, where in it, and what is wrong; never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: Path, what: str, error: type[Exception], hint: str = "") -> Any:
    """The parsed content of ``path``; ``error`` (naming ``what`` and ``hint``) when it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path} ({exc.strerror or exc}){'; ' + hint if hint else ''}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {' '.join(str(exc).split())}") from exc


def validated(model: type[Model], content: Any, path: Path, what: str, error: type[Exception]) -> Model:
    """``content`` checked against ``model``; every problem listed in one ``error`` line."""
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'file'}: {str(item['msg']).removeprefix('Value error, ')}"
            for item in exc.errors()
        )
        raise error(f"{what} {path} is wrong: {problems}") from exc


def load_yaml_model(path: Path, model: type[Model], what: str, error: type[Exception], hint: str = "") -> Model:
    """Read and check a YAML data file in one step."""
    return validated(model, read_yaml(path, what, error, hint), path, what, error)
