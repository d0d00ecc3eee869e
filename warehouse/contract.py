"""The warehouse's own contract, checked with Great Expectations on every micro-batch.

The worker validates each record with the canonical models, but a canonical topic
is a public contract: another team's producer, a replay tool or a bug can put rows
on it that never passed the worker. The sink therefore checks each batch against
expectations before it writes, and a failing row goes to the rejects with the
expectation it broke instead of into an entity table. Each validation's results are kept
with the batch (:mod:`warehouse.quality`), for the quality report.

Great Expectations takes seconds to import, so only the sink loads it, once.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pyarrow as pa

from schemas.records import APPLICATION_STATUSES, EVENT_STATUSES
from warehouse.quality import Lane, Provenance, Screening, expectation_results, parameters_of, suite_result
from warehouse.writer import ENTITY_TABLES, Batch

USCC_PATTERN = r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$"


def _expectations() -> dict[str, list[Any]]:
    import great_expectations.expectations as gxe

    def present(*columns: str) -> list[Any]:
        return [gxe.ExpectColumnValuesToNotBeNull(column=column) for column in columns]

    def coordinates() -> list[Any]:
        return [
            gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
            gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180),
        ]

    return {
        "person": [
            *present("name"),
            gxe.ExpectColumnValuesToMatchRegex(column="id_number", regex=r"^[0-9]{17}[0-9X]$"),
            gxe.ExpectColumnValuesToBeInSet(column="gender", value_set=["M", "F"]),
        ],
        "organisation": [
            *present("name"),
            gxe.ExpectColumnValuesToMatchRegex(column="uscc", regex=USCC_PATTERN),
        ],
        "place": [*present("place_id"), *coordinates()],
        "object": [*present("object_id", "name"), *coordinates()],
        "event": [
            *present("event_id", "category", "department", "reported_at"),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(EVENT_STATUSES)),
            *coordinates(),
        ],
        "event_update": [
            *present("update_id", "event_id", "occurred_at"),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(EVENT_STATUSES)),
        ],
        "track_point": [*present("worker_id", "recorded_at"), *coordinates()],
        "case": [
            *present("case_id", "department", "reported_at", "due_at"),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(EVENT_STATUSES)),
            *coordinates(),
        ],
        "case_transition": [
            *present("case_id", "seq", "at", "actor"),
            gxe.ExpectColumnValuesToBeInSet(column="to_status", value_set=list(EVENT_STATUSES)),
        ],
        "enforcement_case": [
            *present("case_no", "power_code", "officer_id", "status", "filed_at"),
            gxe.ExpectColumnValuesToMatchRegex(column="party_id_number", regex=r"^[0-9]{17}[0-9X]$"),
            gxe.ExpectColumnValuesToMatchRegex(column="party_uscc", regex=USCC_PATTERN),
        ],
        "application": [
            *present("application_id", "item_code", "submitted_at"),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(APPLICATION_STATUSES)),
        ],
    }


def _describe(config: Any) -> str:
    """A sentence naming the column and the rule, e.g. ``id_number must match ^...$``."""
    kwargs = config.kwargs
    column = kwargs.get("column", "?")
    rules = {
        "expect_column_values_to_not_be_null": "must be present",
        "expect_column_values_to_match_regex": f"must match {kwargs.get('regex')}",
        "expect_column_values_to_be_in_set": "must be one of " + ", ".join(map(str, kwargs.get("value_set", []))),
        "expect_column_values_to_be_between": f"must lie between {kwargs.get('min_value', 0):g} and "
        f"{kwargs.get('max_value', 0):g}",
    }
    return f"{column} {rules.get(config.type, config.type)}"


_QUICK = {"result_format": "BOOLEAN_ONLY"}


class QuickScreen:
    """Whether a frame keeps every rule of one suite, from GX's metrics over a graph built once.

    A validation rebuilds its metric graph from the suite on every run: 40-80 ms for a kind's
    few rules, however few the rows, several times per incident batch. The graph depends only
    on the suite and the batch's identity, not on its rows, so it is built here once, and each
    frame is loaded under the same batch id and the graph resolved again (3 ms). Every rule of
    the contract is a column map expectation without ``mostly``, which GX counts as met exactly
    when its ``unexpected_count`` metric is 0; a rule of another sort is refused when the sink
    starts, so the screen can never pass a batch the validation would fail. A metric that cannot
    be computed counts as a failure, and the full validation then says why.
    """

    def __init__(self, definition: Any, suite: Any, columns: list[str]) -> None:
        import pandas as pd
        from great_expectations.validator.metrics_calculator import MetricsCalculator

        batch = definition.get_batch(batch_parameters={"dataframe": pd.DataFrame({column: [] for column in columns})})
        self._engine = batch.data.execution_engine
        self._batch_id = batch.id
        self._calculator = MetricsCalculator(self._engine, show_progress_bars=False)
        self._counts = [self._unexpected_count(expectation) for expectation in suite.expectations]
        self._graph = self._calculator.build_metric_dependency_graph(self._counts, _QUICK)

    def _unexpected_count(self, expectation: Any) -> Any:
        from great_expectations.expectations.expectation import ColumnMapExpectation

        if not isinstance(expectation, ColumnMapExpectation) or expectation.mostly not in (None, 1):
            raise TypeError(
                f"{type(expectation).__name__} cannot join the warehouse contract: its quick screen counts the "
                "unexpected values of column map expectations without 'mostly'"
            )
        dependencies = expectation.get_validation_dependencies(execution_engine=self._engine)
        return dependencies.get_metric_configuration(f"{expectation.map_metric}.unexpected_count")

    def passes(self, frame: Any) -> bool:
        """Whether no row of ``frame`` breaks a rule of the suite."""
        from great_expectations.execution_engine.pandas_batch_data import PandasBatchData

        self._engine.load_batch_data(self._batch_id, PandasBatchData(self._engine, frame))
        try:
            resolved, aborted = self._calculator.resolve_validation_graph(self._graph, _QUICK)
        except Exception:  # noqa: BLE001 - a metric GX cannot compute fails the screen; the validation says why
            return False
        return not aborted and all(resolved.get(count.id) == 0 for count in self._counts)


class BatchContract:
    """One expectation suite per canonical kind, validated against each batch's rows.

    Great Expectations spends almost all of a validation on fixed work per expectation
    (building its metric graph), little on the rows, and the sink validates every kind of
    every micro-batch, several times a second on the incident lane. So each batch is first
    screened by :class:`QuickScreen`, GX's own metrics over a graph built once, on a frame of
    just the columns the suite reads; only a batch that fails is validated in full to find the
    rows and rules to reject. A batch passes the screen exactly when the suite's validation
    succeeds (a unit test holds the two side by side on rows breaking every rule).
    """

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("warehouse-batches")
        self._checks: dict[str, tuple[Any, Any, list[str]]] = {}
        self._screens: dict[str, QuickScreen] = {}
        for kind, expectations in _expectations().items():
            definition = source.add_dataframe_asset(kind).add_batch_definition_whole_dataframe("micro-batch")
            suite = context.suites.add(gx.ExpectationSuite(name=kind, expectations=expectations))
            columns = sorted({expectation.column for expectation in expectations})
            self._checks[kind] = (definition, suite, columns)
            self._screens[kind] = QuickScreen(definition, suite, columns)

    def expectations(self) -> list[dict[str, Any]]:
        """Every expectation of every kind's suite, as the rows of ``quality_expectations``."""
        return [
            {
                "kind": kind,
                "target_table": ENTITY_TABLES[kind][0],
                "expectation_type": config.type,
                "checked_column": config.kwargs.get("column"),
                "parameters": parameters_of(config.kwargs),
                "rule": _describe(config),
            }
            for kind, (_, suite, _) in self._checks.items()
            for config in (expectation.configuration for expectation in suite.expectations)
        ]

    def violations(self, kind: str, rows: list[dict[str, Any]]) -> Screening:
        """The rules each row of one kind breaks, and the validation's results (per-record lane)."""
        import pandas as pd

        _, _, columns = self._checks[kind]
        # A column no row carries is all nulls, so its presence rules fail instead of erroring.
        return self._frame_violations(
            "record",
            kind,
            pd.DataFrame({column: [row.get(column) for row in rows] for column in columns}),
            Provenance.of_rows(rows),
        )

    def table_violations(self, kind: str, table: pa.Table) -> Screening:
        """The rules each row of a bulk-lane table of one kind breaks, and the validation's results."""
        _, _, columns = self._checks[kind]
        present = [column for column in columns if column in table.column_names]
        frame = table.select(present).to_pandas()
        for column in columns:
            if column not in present:
                frame[column] = None
        return self._frame_violations("bulk", kind, frame, Provenance.of_table(table))

    def validation(self, kind: str, frame: Any) -> Any:
        """GX's complete validation of ``frame`` against ``kind``'s suite, every failing row listed."""
        definition, suite, _ = self._checks[kind]
        return definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format={"result_format": "COMPLETE"}
        )

    def passes(self, kind: str, frame: Any) -> bool:
        """Whether every row of ``frame`` keeps every rule of ``kind``'s suite (:class:`QuickScreen`)."""
        return self._screens[kind].passes(frame)

    def _frame_violations(self, lane: Lane, kind: str, frame: Any, provenance: Provenance) -> Screening:
        if self.passes(kind, frame):
            return Screening({}, [suite_result(lane, kind, provenance, ())])
        result = self.validation(kind, frame)
        broken: dict[int, list[str]] = defaultdict(list)
        for outcome in result.results:
            if not outcome.success:
                for index in outcome.result.get("unexpected_index_list") or []:
                    broken[int(index)].append(_describe(outcome.expectation_config))
        results = [
            suite_result(lane, kind, provenance, broken.keys()),
            *expectation_results(lane, kind, result, provenance),
        ]
        return Screening(dict(broken), results)

    def enforce(self, batch: Batch) -> int:
        """Move rows that break the contract from their entity table to the rejects; return how many.

        The validations' results are kept with the batch. A batch is checked once: when its
        transaction is tried again, its failing rows are rejects already and its first results stand.
        Every kind is validated before the batch changes, so a validation that raises leaves it unchecked.
        """
        if batch.quality:
            return 0
        screenings = {kind: self.violations(kind, rows) for kind, rows in batch.entities.items()}
        moved = 0
        for kind, screening in screenings.items():
            rows = batch.entities[kind]
            batch.quality.extend(screening.results)
            broken = screening.broken
            if not broken:
                continue
            batch.entities[kind] = [row for index, row in enumerate(rows) if index not in broken]
            for index, rules in broken.items():
                batch.reject_row(kind, rows[index], "warehouse contract: " + "; ".join(rules))
                moved += 1
        return moved
