"""Every error gridhub raises says by its type whether to retry, reject or stop."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from foundation.errors import ConfigurationError, GridhubError, InputRejected, RetryableError
from foundation.settings import load_settings

PACKAGES = ("foundation", "schemas", "connectors", "streams", "warehouse", "gridhub", "simulation", "bench")
BRANCHES = (RetryableError, InputRejected, ConfigurationError)
VERDICTS = {"simulation.demo.DemoFailed", "bench.hub.BenchError"}
"""A self-check's verdict that the hub is wrong: neither a failure to retry nor input nor set-up."""


def defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in gridhub's own packages."""
    found: dict[str, type[BaseException]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package_name] + [
            info.name
            for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")
            if not info.ispkg and not info.name.endswith(".__main__")  # __main__ runs the command line
        ]
        for module_name in modules:
            module = importlib.import_module(module_name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == module_name:
                    found[f"{module_name}.{value.__qualname__}"] = value
    return sorted(found.values(), key=lambda kind: f"{kind.__module__}.{kind.__qualname__}")


def name_of(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def test_the_packages_define_the_errors_this_test_judges() -> None:
    names = {name_of(kind) for kind in defined_exceptions()}
    assert {"connectors.exports.errors.ExportRejected", "streams.case_machine.IllegalTransition"} <= names
    assert len(names) >= 25


@pytest.mark.parametrize("kind", defined_exceptions(), ids=name_of)
def test_every_error_is_a_gridhub_error_in_exactly_one_branch(kind: type[BaseException]) -> None:
    if kind in (GridhubError, *BRANCHES):
        return
    assert issubclass(kind, GridhubError), f"{name_of(kind)} escapes the taxonomy: the CLI would show a traceback"
    branches = [branch.__name__ for branch in BRANCHES if issubclass(kind, branch)]
    if name_of(kind) in VERDICTS:
        assert branches == []
    else:
        assert len(branches) == 1, f"{name_of(kind)} is in {branches or 'no branch'}"


def test_rejected_input_carries_a_reason_code() -> None:
    assert InputRejected("bad row").reason_code == "rejected_input"
    assert InputRejected("bad row", "invalid_id_number").reason_code == "invalid_id_number"


def test_a_setting_that_does_not_fit_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRIDHUB_TOPIC_PARTITIONS", "many")
    with pytest.raises(ConfigurationError, match="GRIDHUB_TOPIC_PARTITIONS"):
        load_settings()
