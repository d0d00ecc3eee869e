"""Entity resolution on a real (in-memory) DuckDB: matching, survivorship, lineage, review and links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.records import CANONICAL_MODELS
from tests.support.identities import with_check
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ENTITIES, ResolutionRules, RulesError
from warehouse.upsert import transaction
from warehouse.writer import SCHEMA_FILES

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CELL = "320411101001001"
OTHER_CELL = "320411101001002"


WANG = with_check("32041119800203002")
LI = with_check("32041119750611001")


class Warehouse:
    def __init__(self, rules: ResolutionRules | None = None) -> None:
        self.resolver = Resolver(rules or ResolutionRules.load())
        self.db = duckdb.connect()
        for schema in SCHEMA_FILES:
            self.db.execute(schema.read_text())
        self.resolver.install(self.db)

    def load(self, kind: str, *copies: dict[str, Any]) -> None:
        rows = []
        for copy in copies:
            source, record_id, hours = copy.pop("source"), copy.pop("rid"), copy.pop("hours", 0)
            at = T0 + timedelta(hours=hours)
            record = CANONICAL_MODELS[kind].model_validate(copy).model_dump(mode="json")
            rows.append(
                {
                    **record,
                    "source": source,
                    "source_record_id": record_id,
                    "record_uid": f"{source}/{record_id}/{hours}",
                    "fingerprint": "x",
                    "received_at": at,
                    "loaded_at": at,
                }
            )
        with transaction(self.db) as cursor:
            self.resolver.apply(cursor, kind, rows, T0)

    def decide(self, kind: str, source: str, record_id: str, decision: str, entity_key: str | None = None) -> None:
        row = {"kind": kind, "source": source, "source_record_id": record_id, "decision": decision,
               "entity_key": entity_key, "decided_by": "reviewer", "decided_at": T0}  # fmt: skip
        with transaction(self.db) as cursor:
            self.resolver.apply_decisions(cursor, [row], T0)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.db.execute(sql).fetchall()

    def match(self, source: str, record_id: str) -> tuple[str, str, float | None]:
        return self.rows(
            "SELECT entity_key, method, confidence FROM entity_matches "
            f"WHERE source = '{source}' AND source_record_id = '{record_id}'"
        )[0]


@pytest.fixture
def warehouse() -> Warehouse:
    return Warehouse()


def three_departments(warehouse: Warehouse) -> None:
    warehouse.load(
        "person",
        {
            "source": "civil-affairs",
            "rid": "c1",
            "id_number": WANG,
            "name": "王芳",
            "phone": "13900000001",
            "address": "孟河镇通江路十二号",
        },
        {
            "source": "public-security",
            "rid": "p1",
            "hours": 1,
            "id_number": WANG.lower(),
            "name": "王 芳",
            "address": "孟河镇通江路14号",
            "phone": "13900000002",
        },
    )
    warehouse.load(
        "person",
        {"source": "housing", "rid": "h1", "hours": 2, "id_number": WANG, "name": "王芳芳",
         "address": "江苏省常州市新北区孟河镇通江路12号", "phone": "13900000003"},
    )  # fmt: skip


def test_three_departments_make_one_golden_record_with_ranked_survivors(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    assert warehouse.rows("SELECT person_key, name, address, phone, gender, birth_date, source_count, sources "
                          "FROM people") == [
        (WANG, "王芳", "江苏省常州市新北区孟河镇通江路12号", "+8613900000003", "F", datetime(1980, 2, 3).date(), 3,
         ["civil-affairs", "housing", "public-security"]),
    ]  # fmt: skip


def test_lineage_names_the_source_and_time_of_every_surviving_field(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    lineage = {
        field: (value, source, observed_at)
        for field, value, source, observed_at in warehouse.rows(
            f"SELECT field, value, source, observed_at FROM field_lineage WHERE entity_key = '{WANG}'"
        )
    }
    assert lineage["name"] == ("王芳", "public-security", T0 + timedelta(hours=1))
    assert lineage["address"] == ("江苏省常州市新北区孟河镇通江路12号", "housing", T0 + timedelta(hours=2))
    assert lineage["phone"] == ("+8613900000003", "housing", T0 + timedelta(hours=2))
    observed = warehouse.rows(
        f"SELECT source, value FROM field_observations WHERE entity_key = '{WANG}' AND field = 'name' ORDER BY source"
    )
    assert observed == [("civil-affairs", "王芳"), ("housing", "王芳芳"), ("public-security", "王芳")]


def test_newest_value_wins_a_tie_between_equally_ranked_sources(warehouse: Warehouse) -> None:
    warehouse.load(
        "person",
        {"source": "school", "rid": "s1", "id_number": LI, "name": "李强", "address": "万绥村1组"},
        {"source": "clinic", "rid": "k1", "hours": 3, "id_number": LI, "name": "李强", "address": "万绥村2组"},
    )
    assert warehouse.rows("SELECT address FROM people") == [("万绥村2组",)]


def test_an_entity_of_one_copy_and_one_of_several_both_take_the_values_their_lineage_names(
    warehouse: Warehouse,
) -> None:
    """A sole copy skips survivorship's aggregates; what it gives must still be what survivorship would give."""
    three_departments(warehouse)
    warehouse.load(
        "person",
        {"source": "housing", "rid": "h2", "hours": 3, "id_number": LI, "name": "李强", "address": "孟河镇小河路3号"},
        {"source": "civil-affairs", "rid": "c3", "hours": 4, "id_number": WANG, "name": "王芳", "phone": "13900000004"},
    )
    fields = ENTITIES["person"].fields
    as_text = ", ".join(f"CAST({field} AS VARCHAR)" for field in fields)
    golden = {
        row[0]: dict(zip(fields, row[1:], strict=True))
        for row in warehouse.rows(f"SELECT person_key, {as_text} FROM people")
    }
    named = {key: dict.fromkeys(fields) for key in golden}
    for key, field, value in warehouse.rows("SELECT entity_key, field, value FROM field_lineage"):
        named[key][field] = value
    assert golden == named
    assert golden[LI]["phone"] is None and golden[LI]["name"] == "李强"
    assert warehouse.rows("SELECT person_key, source_count, sources, first_received_at, last_received_at FROM people "
                          "ORDER BY person_key") == [
        (LI, 1, ["housing"], T0 + timedelta(hours=3), T0 + timedelta(hours=3)),
        (WANG, 4, ["civil-affairs", "housing", "public-security"], T0, T0 + timedelta(hours=4)),
    ]  # fmt: skip


def test_a_confident_match_without_id_merges_and_records_its_score(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    warehouse.load(
        "person",
        {"source": "community", "rid": "m7", "name": "王芳", "birth_date": "1980-02-03", "phone": "13900000003"},
    )
    assert warehouse.match("community", "m7") == (WANG, "fuzzy", 0.85)
    assert warehouse.rows("SELECT count(*), max(source_count) FROM people") == [(1, 4)]


@pytest.mark.parametrize("written", ["139-0000-0003", "+86 139 0000 0003", "0086 13900000003"])
def test_a_phone_written_another_way_is_the_same_phone(warehouse: Warehouse, written: str) -> None:
    three_departments(warehouse)
    warehouse.load(
        "person", {"source": "community", "rid": "m7", "name": "王芳", "birth_date": "1980-02-03", "phone": written}
    )
    assert warehouse.match("community", "m7") == (WANG, "fuzzy", 0.85)


def test_an_old_phone_on_one_departments_copy_still_identifies_the_person(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    assert warehouse.rows("SELECT phone FROM people") == [("+8613900000003",)]
    warehouse.load(
        "person",
        {"source": "community", "rid": "m6", "name": "王芳", "birth_date": "1980-02-03", "phone": "13900000001"},
    )
    assert warehouse.match("community", "m6") == (WANG, "fuzzy", 0.85)


def test_a_weak_match_is_kept_apart_and_listed_for_review(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    warehouse.load("person", {"source": "community", "rid": "m8", "name": "王芳", "phone": "13900000003",
                              "address": "孟河镇通江路12号"})  # fmt: skip
    assert warehouse.match("community", "m8") == ("~community:m8", "unmatched", None)
    review = warehouse.rows("SELECT source_record_id, candidate_key, score, detail FROM match_review")
    assert review == [("m8", WANG, 0.7, "name 1.0, birth_date 0.0, phone 1.0, address_norm 1.0")]
    assert warehouse.rows("SELECT count(*) FROM people") == [(2,)]


def test_a_reviewer_merges_a_listed_copy_and_it_stays_merged_when_resent(warehouse: Warehouse) -> None:
    weak = {"source": "community", "rid": "m8", "name": "王芳", "phone": "13900000003", "address": "孟河镇通江路12号"}
    three_departments(warehouse)
    warehouse.load("person", dict(weak))
    warehouse.decide("person", "community", "m8", "merge", WANG)
    assert warehouse.match("community", "m8") == (WANG, "manual", 1.0)
    assert warehouse.rows("SELECT count(*) FROM match_review") == [(0,)]
    assert warehouse.rows("SELECT person_key, source_count FROM people") == [(WANG, 4)]
    warehouse.load("person", {**weak, "phone": "13900000009", "hours": 5})
    assert warehouse.match("community", "m8") == (WANG, "manual", 1.0)


def test_a_reviewer_keeps_a_copy_apart_and_it_is_not_listed_again(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    warehouse.load("person", {"source": "community", "rid": "m8", "name": "王芳", "phone": "13900000003",
                              "address": "孟河镇通江路12号"})  # fmt: skip
    warehouse.decide("person", "community", "m8", "separate")
    warehouse.load("person", {"source": "housing", "rid": "h9", "id_number": WANG, "name": "王芳", "hours": 6})
    assert warehouse.match("community", "m8") == ("~community:m8", "manual", 1.0)
    assert warehouse.rows("SELECT count(*) FROM match_review") == [(0,)]


def test_a_decision_cannot_override_a_strong_key(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    warehouse.decide("person", "housing", "h1", "separate")
    assert warehouse.match("housing", "h1") == (WANG, "id_number", 1.0)


def test_a_match_below_the_review_floor_is_neither_merged_nor_listed(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    warehouse.load("person", {"source": "community", "rid": "m9", "name": "王芳", "phone": "13700000000",
                              "birth_date": "1991-01-01"})  # fmt: skip
    assert warehouse.match("community", "m9")[1] == "unmatched"
    assert warehouse.rows("SELECT count(*) FROM match_review") == [(0,)]


def test_a_record_without_id_moves_to_the_register_that_arrives_later(warehouse: Warehouse) -> None:
    warehouse.load("person", {"source": "community", "rid": "m1", "name": "李强", "birth_date": "1975-06-11",
                              "phone": "13800000000"})  # fmt: skip
    assert warehouse.rows("SELECT person_key FROM people") == [("~community:m1",)]
    warehouse.load("person", {"source": "public-security", "rid": "p9", "id_number": LI, "name": "李强",
                              "phone": "13800000000"})  # fmt: skip
    assert warehouse.match("community", "m1")[:2] == (LI, "fuzzy")
    assert warehouse.rows("SELECT person_key, source_count FROM people") == [(LI, 2)]


def test_two_records_without_id_in_one_batch_become_one_entity(warehouse: Warehouse) -> None:
    twin = {"name": "赵敏", "birth_date": "1990-04-05", "phone": "13600000000"}
    warehouse.load("person", {"source": "community", "rid": "a", **twin}, {"source": "school", "rid": "b", **twin})
    assert warehouse.rows("SELECT person_key, source_count FROM people") == [("~community:a", 2)]


def test_an_ambiguous_match_is_listed_for_review_not_guessed(warehouse: Warehouse) -> None:
    place = {"place_type": "house", "address": "孟河镇通江路12号"}
    warehouse.load(
        "place",
        {"source": "housing", "rid": "H1", "place_id": "H1", "grid_code": CELL, **place},
        {"source": "housing", "rid": "H2", "place_id": "H2", "grid_code": OTHER_CELL, **place},
    )
    warehouse.load("place", {"source": "police", "rid": "X1", "place_id": "X1", **place})
    assert warehouse.match("police", "X1")[1] == "unmatched"
    assert sorted(row[0] for row in warehouse.rows("SELECT candidate_key FROM match_review")) == [
        f"{CELL}|通江路12号",
        f"{OTHER_CELL}|通江路12号",
    ]


def test_places_merge_on_normalised_address_in_the_same_cell(warehouse: Warehouse) -> None:
    warehouse.load(
        "place",
        {"source": "housing", "rid": "H1", "place_id": "H1", "grid_code": CELL, "address": "孟河镇通江路十二号"},
        {"source": "natural-resources", "rid": "Z1", "place_id": "320411101001JC00012", "grid_code": CELL,
         "address": "江苏省常州市新北区孟河镇通江路12号", "place_type": "parcel"},
        {"source": "police", "rid": "X2", "place_id": "X2", "address": "孟河镇通江路12号", "name": "王家"},
    )  # fmt: skip
    assert warehouse.rows("SELECT place_key, place_id, place_type, source_count FROM places") == [
        (f"{CELL}|通江路12号", "320411101001JC00012", "parcel", 3)
    ]
    assert warehouse.match("police", "X2")[1] == "fuzzy"


def test_objects_merge_on_standard_code_or_on_category_and_location(warehouse: Warehouse) -> None:
    manhole = {"name": "污水井盖", "category_code": "0103", "lat": 31.95, "lon": 119.85}
    warehouse.load(
        "object",
        {"source": "urban-management", "rid": "U1", "object_id": "3204110103000001", **manhole},
        {"source": "water", "rid": "W1", "object_id": "3204-1101-0300-0001", **manhole, "state": "damaged"},
        {"source": "sewage-co", "rid": "S1", "object_id": "WS-77", **manhole, "lat": 31.95003},
        {"source": "sewage-co", "rid": "S2", "object_id": "WS-78", **manhole, "lat": 31.9506},
    )
    assert warehouse.rows("SELECT object_key, source_count, state FROM objects ORDER BY object_key") == [
        ("3204110103000001", 3, "damaged"),
        ("~sewage-co:S2", 1, None),
    ]


def test_replaying_a_batch_changes_no_golden_row(warehouse: Warehouse) -> None:
    three_departments(warehouse)
    snapshot = "SELECT * EXCLUDE (resolved_at) FROM people"
    before = warehouse.rows(snapshot), warehouse.rows("SELECT * EXCLUDE (matched_at) FROM entity_matches")
    three_departments(warehouse)
    assert (warehouse.rows(snapshot), warehouse.rows("SELECT * EXCLUDE (matched_at) FROM entity_matches")) == before


def test_a_corrected_id_moves_the_copy_and_the_old_entity_disappears(warehouse: Warehouse) -> None:
    warehouse.load("person", {"source": "school", "rid": "s1", "id_number": WANG, "name": "李强"})
    warehouse.load("person", {"source": "school", "rid": "s1", "id_number": LI, "name": "李强", "hours": 1})
    assert warehouse.rows("SELECT person_key FROM people") == [(LI,)]


def test_links_join_the_five_kinds(warehouse: Warehouse) -> None:
    company = "91320411MA1XXXXX0Y"
    three_departments(warehouse)
    warehouse.load("place", {"source": "housing", "rid": "H1", "place_id": "H1", "grid_code": CELL,
                             "address": "孟河镇通江路12号"})  # fmt: skip
    warehouse.db.execute(
        "INSERT INTO organisations (organisation_key, uscc, name, legal_representative_id, address_norm) "
        f"VALUES ('{company}', '{company}', '孟河五金店', '{WANG}', '通江路12号')"
    )
    warehouse.db.execute(
        "INSERT INTO applications (application_id, item_code, status, applicant_id_number) "
        f"VALUES ('A1', 'XK-001', 'submitted', '{WANG}')"
    )
    links = warehouse.rows(f"SELECT relation, other_kind, other_key, direction FROM linked_to('person', '{WANG}')")
    assert sorted(links) == [
        ("lives_at", "place", f"{CELL}|通江路12号", "outgoing"),
        ("represents", "organisation", company, "outgoing"),
        ("submitted_by", "application", "A1", "incoming"),
    ]


def test_rules_naming_an_unknown_field_are_refused_with_the_field(tmp_path: Path) -> None:
    text = Path("schemas/data/resolution.yaml").read_text(encoding="utf-8").replace("phone: newest", "mobile: newest")
    broken = tmp_path / "rules.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=r"unknown field.*mobile"):
        ResolutionRules.load(broken)


def test_a_batch_left_without_copies_changes_nothing() -> None:
    """The contract may refuse every copy of a kind in a batch; resolving none is a no-op, not a crash."""
    warehouse = Warehouse()
    warehouse.load("person", {"source": "police", "rid": "1", "id_number": WANG, "name": "王芳"})
    warehouse.load("person")
    assert warehouse.rows("SELECT person_key, source_count FROM people") == [(WANG, 1)]
