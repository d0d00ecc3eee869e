"""The masked schema on real warehouse files: what an analyst sees, what the commander sees, and that joins hold."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.identity import USCC_ALPHABET, uscc_check_char
from schemas.personal import (
    load_personal_fields,
    looks_personal,
    mask_address,
    mask_birth_date,
    mask_id_number,
    mask_name,
    mask_phone,
    pseudonym,
    scrub_text,
)
from schemas.records import Organisation, Person, Place
from schemas.rejects import Reject
from tests.support.identities import FULL_ID, FULL_MOBILE, with_check
from tests.unit.schemas.test_personal import free_text, mobiles, resident_ids
from warehouse.masking import (
    MACRO_PREFIX,
    MACROS,
    MASKED_SCHEMA,
    PRIVATE_TABLES,
    install_masked_views,
    relations_of,
    use_schema,
)
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sql_guard import DENIED_PREFIXES, QueryRefused, check_query, own_table_macros
from warehouse.writer import SCHEMA_FILES, WAREHOUSE_VERSION, Batch, WarehouseWriter, connect

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
NAME_CHARS = "王李张刘陈杨赵黄周吴芳伟娜敏静丽强磊军洋"
ADDRESS_CHARS = "江苏省常州市新北区孟河镇通江路村组栋单元室"
"""Disjoint from the names' characters and from free text's, so a whole name or address found is a leak."""


@dataclass(frozen=True)
class Town:
    """What one generated day puts in the warehouse: residents' IDs, phones, names, addresses, and free text."""

    ids: list[str]
    phones: list[str]
    names: list[str]
    addresses: list[str]
    texts: list[str]
    uscc: str


def _uscc(body: str) -> str:
    first17 = "91320411" + body
    return first17 + uscc_check_char(first17)


@st.composite
def towns(draw: st.DrawFn) -> Town:
    ids = draw(st.lists(resident_ids(), min_size=3, max_size=5, unique=True))
    phones = draw(st.lists(mobiles(), min_size=2, max_size=4, unique=True))
    embedded = st.one_of(free_text(), st.sampled_from(ids), st.sampled_from(phones))
    texts = draw(st.lists(st.lists(embedded, min_size=1, max_size=4).map(" ".join), min_size=6, max_size=6))
    return Town(
        ids=ids,
        phones=phones,
        names=draw(st.lists(st.text(NAME_CHARS, min_size=2, max_size=3), min_size=3, max_size=3, unique=True)),
        addresses=draw(st.lists(st.text(ADDRESS_CHARS, min_size=8, max_size=16), min_size=2, max_size=2, unique=True)),
        texts=texts,
        uscc=_uscc(draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))),
    )


WANG, ZHAO, LI = with_check("32041119800203002"), "11010519491231002X", with_check("32041119750611001")
FIXED = Town(
    ids=[WANG, ZHAO, LI],
    phones=["13812345678", "13987654321"],
    names=["王芳", "李强", "张娜娜"],
    addresses=["江苏省常州市新北区孟河镇通江路", "常州市新北区孟河镇小河村组"],
    texts=[
        f"报修人{WANG}，电话13812345678",
        "井盖破损 13987654321",
        f"身份证 {ZHAO[:6]} {ZHAO[6:14]} {ZHAO[14:]}",
        "no number",
        "+8613812345678",
        LI,
    ],
    uscc=_uscc("MA1MXXXX1"),
)


def provenance(source: str, record_id: str) -> dict[str, Any]:
    return {
        "source": source,
        "source_record_id": record_id,
        "record_uid": f"{source}/{record_id}",
        "fingerprint": f"fp-{source}-{record_id}",
        "received_at": T0,
        "loaded_at": T0,
    }


def day_of(town: Town) -> Batch:
    """The town's records as the sink writes them: source copies through the resolver, the rest upserted."""
    ids, phones, names, addresses, texts = town.ids, town.phones, town.names, town.addresses, town.texts
    people = [
        Person.model_validate(
            {"id_number": code, "name": names[i % 3], "phone": phones[i % len(phones)], "address": addresses[i % 2]}
        ).model_dump(mode="json")
        | provenance("civil-affairs", f"c{i}")
        for i, code in enumerate(ids)
    ]
    people.append(
        Person.model_validate({"id_number": ids[0], "name": names[0], "phone": phones[-1], "address": addresses[0]})
        .model_dump(mode="json")
        .__or__(provenance("housing", "h0"))
    )
    people.append(
        Person.model_validate({"name": names[1], "phone": phones[0], "address": addresses[1]}).model_dump(mode="json")
        | provenance("approvals", "a0")
    )
    organisation = Organisation.model_validate(
        {
            "uscc": town.uscc,
            "name": "孟河机械厂",
            "legal_representative": names[0],
            "legal_representative_id": ids[0],
            "registered_address": "厂区大道一号",
            "phone": phones[1 % len(phones)],
        }
    ).model_dump(mode="json") | provenance("market", "m0")
    place = Place.model_validate(
        {"place_id": "H-1", "place_type": "house", "name": texts[0], "address": "工业园一号", "grid_code": "3" * 15}
    ).model_dump(mode="json") | provenance("housing", "p0")
    events = [
        {
            "event_id": f"E{i}",
            "category": "road",
            "description": text,
            "reported_at": T0,
            "reporter_id": [f"GW0{i}", phones[0], ids[1]][i % 3],
            "lon": 119.9,
            "lat": 31.9,
            "photo_refs": [text, ids[i % len(ids)], "sha256:abc"],
            "status": "dispatched",
            "case_id": "C1",
            "subject_id_number": ids[i % len(ids)],
            "subject_uscc": town.uscc,
        }
        | provenance("patrol", f"E{i}")
        for i, text in enumerate(texts[:3])
    ]
    due = T0 + timedelta(days=1)
    return Batch(
        entities={
            "person": people,
            "organisation": [organisation],
            "place": [place],
            "event": events,
            "event_update": [
                {
                    "update_id": "U1",
                    "event_id": "E0",
                    "status": "in_handling",
                    "occurred_at": T0,
                    "actor": ids[1],
                    "actor_role": "grid_worker",
                    "note": texts[3],
                }
                | provenance("patrol", "U1"),
            ],
            "application": [
                {
                    "application_id": "A1",
                    "item_code": "X1",
                    "item_name": "个体工商户登记",
                    "applicant_id_number": ids[0],
                    "status": "accepted",
                    "submitted_at": T0,
                    "updated_at": T0,
                }
                | provenance("approvals", "A1"),
            ],
            "track_point": [
                {"worker_id": worker, "recorded_at": T0 + timedelta(minutes=i), "lat": 31.9, "lon": 119.9}
                | provenance("patrol", f"T{i}")
                for i, worker in enumerate(["GW017", phones[0]])
            ],
            "case": [
                {
                    "case_id": "C1",
                    "category": "road",
                    "department": "water",
                    "reporter_id": "GW017",
                    "status": "closed",
                    "reported_at": T0,
                    "due_at": due,
                    "closed_at": T0 + timedelta(hours=3),
                    "report_ids": ["E0", ids[0]],
                    "report_count": 1,
                    "seq": 2,
                    "rework_count": 0,
                    "return_count": 0,
                    "lat": 31.9,
                    "lon": 119.9,
                }
                | provenance("cases", "C1"),
            ],
            "case_transition": [
                {
                    "case_id": "C1",
                    "seq": seq,
                    "from_status": None,
                    "to_status": status,
                    "action": "step",
                    "actor": actor,
                    "actor_role": "desk",
                    "at": T0 + timedelta(hours=seq),
                    "due_at": due,
                    "note": texts[4],
                }
                | provenance("cases", f"C1/{seq}")
                for seq, status, actor in [(1, "dispatched", phones[0]), (2, "closed", ids[2])]
            ],
        },
        rejects=[
            Reject.build(
                "validate",
                "invalid_id_number",
                texts[5],
                {"id_number": ids[0], "phone": phones[0], "note": texts[0]},
                record_uid="r1",
                source="civil-affairs",
                source_record_id=ids[0],
                entity="person",
                error=ValueError(texts[1]),
            ).model_dump(mode="json")
        ],
        intake=[
            {
                "record_uid": "i1",
                "run_id": "run",
                "source": "civil-affairs",
                "source_record_id": ids[0],
                "entity": "person",
                "outcome": "new",
                "reason_code": None,
                "received_at": T0,
                "processed_at": T0,
                "written_at": T0,
            },
        ],
        decisions=[
            {
                "kind": "person",
                "source": "approvals",
                "source_record_id": "a0",
                "decision": "merge",
                "entity_key": ids[0],
                "decided_by": phones[0],
                "decided_at": T0,
            },
        ],
    )


def write_day(connection: duckdb.DuckDBPyConnection, town: Town) -> None:
    """Empty the warehouse's tables, write the town's day the sink's way, and make the masked views again."""
    tables = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name NOT IN ('masking_secret', 'warehouse_meta')"
    ).fetchall()
    for (table,) in tables:
        connection.execute(f'DELETE FROM "{table}"')
    WarehouseWriter(connection, Resolver(ResolutionRules.load())).write(day_of(town), {})
    connection.execute(
        "INSERT INTO match_review VALUES ('person', 'approvals', ?, ?, 0.5, ?, ?)",
        [town.ids[1], town.ids[2], town.texts[2], T0],
    )
    install_masked_views(connection)


def texts_in(value: Any) -> Iterator[str]:
    """Every string in a value DuckDB returned: itself, or inside lists, tuples and structs."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from texts_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from texts_in(item)


def rows_as(connection: duckdb.DuckDBPyConnection, schema: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` answered as a role of ``schema`` sees it."""
    cursor = connection.cursor()
    try:
        use_schema(cursor, schema)
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


def secret_of(connection: duckdb.DuckDBPyConnection) -> str:
    return str(connection.execute("SELECT secret FROM main.masking_secret").fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse file set up by the sink's own start-up, holding the fixed town's day."""
    connection = connect(tmp_path_factory.mktemp("w") / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    write_day(connection, FIXED)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path_factory.mktemp("g") / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    yield connection
    connection.close()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(town=towns())
def test_no_masked_view_shows_a_whole_id_mobile_name_or_address(
    generated: duckdb.DuckDBPyConnection, town: Town
) -> None:
    write_day(generated, town)
    whole = [*town.names, *town.addresses]
    views = relations_of(generated, MASKED_SCHEMA)
    assert views == relations_of(generated, "main")
    cursor = generated.cursor()
    use_schema(cursor, MASKED_SCHEMA)
    for view in sorted(views):
        for row in cursor.execute(f'SELECT * FROM "{view}"').fetchall():
            for text in texts_in(row):
                assert not FULL_ID.search(text), (view, text)
                assert not FULL_MOBILE.search(text), (view, text)
                assert not any(value in text for value in whole), (view, text)
    commander = [text for row in rows_as(generated, "main", "SELECT * FROM people") for text in texts_in(row)]
    assert set(town.ids) <= set(commander)


def test_every_table_and_view_has_its_masked_view_and_linked_to_has_a_masked_twin(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    main = relations_of(warehouse, "main")
    assert {"people", "events", "cases", "kpi_case_facts", "field_lineage", "entity_links", "rejects"} <= main
    assert relations_of(warehouse, MASKED_SCHEMA) == main
    assert not main & PRIVATE_TABLES
    macros = warehouse.execute(
        "SELECT schema_name FROM duckdb_functions() WHERE function_name = 'linked_to' ORDER BY 1"
    ).fetchall()
    assert macros == [("main",), (MASKED_SCHEMA,)]


def test_the_commander_sees_values_whole_and_a_masked_role_sees_them_masked(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    wang, secret = FIXED.ids[0], secret_of(warehouse)
    sql = "SELECT person_key, id_number, name, birth_date, phone, address, gender FROM people WHERE {} = ?"
    cursor = warehouse.cursor()
    use_schema(cursor, "main")
    whole = cursor.execute(sql.format("person_key"), [wang]).fetchone()
    use_schema(cursor, MASKED_SCHEMA)
    masked = cursor.execute(sql.format("person_key"), [pseudonym(wang, secret)]).fetchone()
    assert whole is not None and masked is not None
    assert whole[:2] == (wang, wang)
    assert masked == (
        pseudonym(wang, secret),
        mask_id_number(whole[1]),
        mask_name(whole[2]),
        mask_birth_date(whole[3]),
        mask_phone(whole[4]),
        mask_address(whole[5]),
        whole[6],
    )
    assert masked[1:4] == (WANG[:6] + "*" * 10 + WANG[-2:], "王*", date(1980, 1, 1))


def test_joins_and_groups_give_the_same_counts_masked_and_whole(warehouse: duckdb.DuckDBPyConnection) -> None:
    people_matches = (
        "SELECT count(*) FROM people p JOIN entity_matches m ON m.kind = 'person' AND m.entity_key = p.person_key"
    )
    links = "SELECT count(*) FROM entity_links l JOIN people p ON p.person_key = l.to_key OR p.person_key = l.from_key"
    workers = "SELECT count(DISTINCT worker), count(*) FROM kpi_case_facts GROUP BY ALL"
    for sql in [people_matches, links, workers, "SELECT count(DISTINCT actor) FROM case_transitions"]:
        whole = rows_as(warehouse, "main", sql)
        assert whole == rows_as(warehouse, MASKED_SCHEMA, sql), sql
        assert whole[0][0] > 0, sql
    by_id = "SELECT count(*) FROM events e JOIN people p ON e.subject_id_number = p.{}"
    assert rows_as(warehouse, "main", by_id.format("id_number")) == rows_as(
        warehouse, MASKED_SCHEMA, by_id.format("person_key")
    )


def test_linked_to_answers_for_the_pseudonym_under_the_masked_schema(warehouse: duckdb.DuckDBPyConnection) -> None:
    wang = FIXED.ids[0]
    whole = rows_as(warehouse, "main", f"SELECT relation, other_kind FROM linked_to('person', '{wang}') ORDER BY 1, 2")
    key = pseudonym(wang, secret_of(warehouse))
    masked = rows_as(
        warehouse, MASKED_SCHEMA, f"SELECT relation, other_kind FROM linked_to('person', '{key}') ORDER BY 1, 2"
    )
    assert whole and masked == whole
    assert rows_as(warehouse, MASKED_SCHEMA, f"SELECT * FROM linked_to('person', '{wang}')") == []


def test_lineage_values_are_masked_as_their_field_and_reject_payloads_hidden(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    lineage = "SELECT kind, field, value FROM field_lineage WHERE field IN ('name', 'phone', 'birth_date') ORDER BY ALL"
    whole = rows_as(warehouse, "main", lineage)
    masked = rows_as(warehouse, MASKED_SCHEMA, lineage)
    expected = {
        ("organisation", "name"): lambda value: value,
        ("organisation", "phone"): mask_phone,
        ("person", "name"): mask_name,
        ("person", "phone"): mask_phone,
        ("person", "birth_date"): lambda value: str(mask_birth_date(date.fromisoformat(value))),
        ("place", "name"): lambda value: scrub_text(value, secret_of(warehouse)),
    }
    assert sorted(masked) == sorted((kind, field, expected[kind, field](value)) for kind, field, value in whole)
    assert ("organisation", "name", "孟河机械厂") in masked
    assert rows_as(warehouse, "main", "SELECT count(payload) FROM rejects") == [(1,)]
    assert rows_as(warehouse, MASKED_SCHEMA, "SELECT count(*), count(payload) FROM rejects") == [(1, 0)]


def test_free_text_is_scrubbed_as_in_python(warehouse: duckdb.DuckDBPyConnection) -> None:
    secret = secret_of(warehouse)
    sql = "SELECT event_id, description, photo_refs FROM events ORDER BY event_id"
    for whole, masked in zip(rows_as(warehouse, "main", sql), rows_as(warehouse, MASKED_SCHEMA, sql), strict=True):
        assert masked == (scrub_text(whole[0], secret), scrub_text(whole[1], secret),
                          [scrub_text(item, secret) for item in whole[2]])  # fmt: skip
    assert rows_as(warehouse, MASKED_SCHEMA, "SELECT description FROM events WHERE event_id = 'E0'") == [
        (f"报修人{WANG[:6]}**********{WANG[-2:]}，电话138****5678",)
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=free_text(), name=st.text(max_size=12))
def test_the_sql_masks_are_the_python_masks(warehouse: duckdb.DuckDBPyConnection, text: str, name: str) -> None:
    secret = secret_of(warehouse)
    sql = warehouse.execute(
        "SELECT main.gh_scrub($t, $k), main.gh_pseudonym($t, $k), main.gh_mask_id_number($t), main.gh_mask_phone($t), "
        "main.gh_mask_name($n), main.gh_mask_address($n)",
        {"t": text, "n": name, "k": secret},
    ).fetchone()
    python = (
        scrub_text(text, secret),
        pseudonym(text, secret),
        mask_id_number(text),
        mask_phone(text),
        mask_name(name),
        mask_address(name),
    )
    assert sql == python


def test_the_guard_holds_a_masked_role_to_the_masked_relations(warehouse: duckdb.DuckDBPyConnection) -> None:
    relations, macros = relations_of(warehouse, MASKED_SCHEMA), own_table_macros(warehouse)
    for sql in ["SELECT * FROM people", "SELECT * FROM linked_to('person', 'P-x')", "SELECT * FROM kpi_case_facts"]:
        check_query(sql, macros, relations)
    for sql, code in [
        ("SELECT * FROM main.people", "relation"),
        ("SELECT * FROM masking_secret", "relation"),
        ("SELECT * FROM audit_log", "relation"),
        ("SELECT * FROM main.linked_to('person', 'x')", "relation"),
        ("SELECT gh_pseudonym('11010519491231002X', secret) FROM masking_secret", "function"),
    ]:
        with pytest.raises(QueryRefused) as refused:
            check_query(sql, macros, relations)
        assert refused.value.reason_code == code, sql


def test_a_name_the_masked_schema_lacks_falls_back_to_main_so_only_the_guard_stops_it(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    secret = rows_as(warehouse, MASKED_SCHEMA, "SELECT secret FROM masking_secret")
    assert secret == [(secret_of(warehouse),)]


def test_installing_again_changes_nothing_and_a_reopened_warehouse_keeps_its_secret(tmp_path: Path) -> None:
    path, resolver = tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load())
    connection = connect(path, resolver)
    write_day(connection, FIXED)
    sql = "SELECT person_key, name FROM people ORDER BY ALL"
    before, secret = rows_as(connection, MASKED_SCHEMA, sql), secret_of(connection)
    install_masked_views(connection)
    install_masked_views(connection)
    assert rows_as(connection, MASKED_SCHEMA, sql) == before
    connection.close()
    connection = connect(path, resolver)
    assert (secret_of(connection), rows_as(connection, MASKED_SCHEMA, sql)) == (secret, before)
    connection.close()
    with duckdb.connect(str(path), read_only=True) as reader:
        assert rows_as(reader, MASKED_SCHEMA, sql) == before
    other = connect(tmp_path / "other.duckdb", resolver)
    assert secret_of(other) != secret
    other.close()


def test_an_upgraded_warehouse_gets_the_masked_schema(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as old:
        for schema in SCHEMA_FILES:
            old.execute(schema.read_text())
        old.execute("ALTER TABLE applications DROP COLUMN run_id; ALTER TABLE applications DROP COLUMN topic")
        old.execute("CREATE TABLE warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        old.execute(f"INSERT INTO warehouse_meta VALUES ('version', '{WAREHOUSE_VERSION - 1}')")
        old.execute("INSERT INTO people (person_key, id_number, name) VALUES (?, ?, '王芳')", [ZHAO, ZHAO])
    connection = connect(path, Resolver(ResolutionRules.load()))
    assert relations_of(connection, MASKED_SCHEMA) == relations_of(connection, "main")
    assert {"run_id", "topic"} <= {row[0] for row in rows_as(connection, MASKED_SCHEMA, "DESCRIBE applications")}
    assert rows_as(connection, MASKED_SCHEMA, "SELECT id_number, name FROM people") == [("110105**********2X", "王*")]
    connection.close()


def test_tables_made_later_are_masked_at_the_next_install_and_gone_ones_dropped(tmp_path: Path) -> None:
    connection = connect(tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    connection.execute(
        "CREATE TABLE notes (who VARCHAR, tags VARCHAR[], meta STRUCT(phone VARCHAR), n INTEGER, seen TIMESTAMPTZ)"
    )
    connection.execute(
        "INSERT INTO notes VALUES ('11010519491231002X', ['电话13812345678'], {'phone': '13812345678'}, 7, now())"
    )
    connection.execute("CREATE TABLE audit_log (caller VARCHAR, statement VARCHAR)")
    install_masked_views(connection)
    secret = secret_of(connection)
    assert rows_as(connection, MASKED_SCHEMA, "SELECT who, tags, meta, n FROM notes") == [
        (pseudonym("11010519491231002X", secret), ["电话138****5678"], None, 7)
    ]
    assert "audit_log" not in relations_of(connection, MASKED_SCHEMA) | relations_of(connection, "main")
    connection.execute("DROP TABLE notes")
    install_masked_views(connection)
    assert "notes" not in relations_of(connection, MASKED_SCHEMA)
    connection.close()


def test_the_classification_names_only_columns_that_exist_and_every_personal_sounding_one(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    fields = load_personal_fields()
    columns = {
        (str(relation), str(column))
        for relation, column in warehouse.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
        if relation not in PRIVATE_TABLES
    }
    named = {(relation, column) for relation, masks in fields.relations.items() for column in masks}
    named |= {(relation, column) for relation, listed in fields.not_personal.items() for column in listed}
    named |= {(relation, spec.value) for relation, spec in fields.by_field.items()}
    assert named - columns == set(), "classified columns the warehouse does not have"
    unreviewed = {(relation, column) for relation, column in columns if looks_personal(column)}
    unreviewed = {(relation, column) for relation, column in unreviewed if not fields.reviewed(relation, column)}
    assert unreviewed == set(), "columns that sound personal: classify them in schemas/data/personal_fields.yaml"


def test_use_schema_takes_only_a_schema_name(warehouse: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="not a schema name"):
        use_schema(warehouse.cursor(), "masked'; SET enable_external_access = true; --")


def test_every_masking_macro_is_one_the_guard_refuses() -> None:
    assert MACRO_PREFIX in DENIED_PREFIXES
    assert all(signature.startswith(MACRO_PREFIX) for signature in MACROS)


def test_a_place_key_which_holds_its_address_is_a_pseudonym_that_still_joins(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    keys = rows_as(warehouse, MASKED_SCHEMA, "SELECT place_key, address FROM places")
    assert keys
    assert all(key.startswith("P-") and "工业园" not in key for key, _ in keys), keys
    assert all(address != "工业园一号" for _, address in keys)
    to_places = "SELECT count(*) FROM entity_matches m JOIN places p ON m.kind = 'place' AND m.entity_key = p.place_key"
    assert rows_as(warehouse, "main", to_places) == rows_as(warehouse, MASKED_SCHEMA, to_places) != [(0,)]
