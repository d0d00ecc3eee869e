"""The person fast path accepts a row only with exactly the model's values, and leaves every other row to the model."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.data import person_export
from connectors.exports.columns import ColumnMap
from schemas import TOWN_TIMEZONE
from schemas.records import Person
from simulation.town import PEOPLE_HEADERS
from streams.batch_people import INPUT_FIELDS, PeopleBatch, normalise_people
from streams.normalise import fingerprint
from tests.support.identities import with_check, with_wrong_check

WOMAN_ID = "11010519491231002X"  # GB 11643 example: female, born 1949-12-31
MAN_ID = "440524188001010014"  # GB 11643 example: male, born 1880-01-01
USCC = "91350100M000100Y43"  # GB 32100 example
ADDRESS = "江苏省常州市新北区孟河镇小河村3组12号"
DUMP_KEYS = [
    *("id_number", "name", "gender", "birth_date", "phone", "address", "employer_uscc"),
    *("match_key", "address_norm"),
]
TEXT_SCHEMA = pa.schema([(field, pa.string()) for field in INPUT_FIELDS])
FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def model_view(row: dict[str, Any]) -> dict[str, Any] | None:
    """What the per-row path makes of a row: the JSON dump plus fingerprint, or None for a reject."""
    try:
        record = Person.model_validate(row)
    except ValidationError:
        return None
    return {**record.model_dump(mode="json"), "fingerprint": fingerprint(record)}


def decide(table: pa.Table) -> tuple[PeopleBatch, list[dict[str, Any] | None]]:
    """Run the fast path and hold it to the model: a partition of the rows, and the model's values where it accepts."""
    batch = normalise_people(table)
    rows = table.to_pylist()
    expected = [model_view(row) for row in rows]
    assert batch.accepted.column_names == ["row", *DUMP_KEYS, "fingerprint"]
    assert batch.accepted.schema.field("row").type == pa.int64()
    assert all(batch.accepted.schema.field(name).type == pa.string() for name in [*DUMP_KEYS, "fingerprint"])
    assert batch.undecided.type == pa.int64()
    accepted = batch.accepted.to_pylist()
    undecided = batch.undecided.to_pylist()
    assert sorted([row["row"] for row in accepted] + undecided) == list(range(table.num_rows))
    for values in accepted:
        index = values.pop("row")
        assert values == expected[index], f"row {index}: {rows[index]!r}"
    assert {index for index, view in enumerate(expected) if view is None} <= set(undecided)
    return batch, expected


def text_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table of text columns, one for every key any row has (from_pylist reads the first row's only)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return pa.Table.from_pylist(rows, schema=pa.schema([(name, pa.string()) for name in names]))


def accepted_rows(batch: PeopleBatch) -> set[int]:
    return set(batch.accepted.column("row").to_pylist())


# The bench export -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_rows(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """20,000 rows of the benchmark's register, read and renamed the way a batch connector would."""
    export = person_export(tmp_path_factory.mktemp("bench"), 20_000, seed=5)
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(PEOPLE_HEADERS, pa.string()))
    table = pacsv.read_csv(export.path, convert_options=options)
    columns = ColumnMap("person")
    table = table.rename_columns([columns.field(header) for header in table.column_names])
    return table.append_column("record_uid", pa.array([f"uid-{i}" for i in range(table.num_rows)]))


def test_the_bench_export_is_decided_as_the_model_decides_it_and_almost_all_on_the_fast_path(
    bench_rows: pa.Table,
) -> None:
    batch, expected = decide(bench_rows)
    valid = [index for index, view in enumerate(expected) if view is not None]
    assert len(valid) >= 0.98 * bench_rows.num_rows
    assert len(accepted_rows(batch) & set(valid)) >= 0.99 * len(valid)


def test_a_table_in_several_chunks_is_one_table(bench_rows: pa.Table) -> None:
    head = bench_rows.slice(0, 300)
    chunked = pa.concat_tables([head.slice(0, 100), head.slice(100, 150), head.slice(250)])
    assert normalise_people(chunked).accepted.equals(normalise_people(head).accepted)


def test_the_accepted_columns_are_the_model_dump_in_its_order() -> None:
    assert list(Person.model_validate(WOMAN).model_dump(mode="json")) == DUMP_KEYS
    assert normalise_people(text_table([WOMAN])).accepted.column_names == ["row", *DUMP_KEYS, "fingerprint"]


# Awkward rows ---------------------------------------------------------------------------------------

WOMAN = {"id_number": WOMAN_ID, "name": "张三", "gender": "女", "birth_date": "1949-12-31", "phone": "13800000000"}
MAN = {"id_number": MAN_ID, "name": "李四", "gender": "男", "birth_date": "1880-01-01", "address": ADDRESS}
TODAY = datetime.now(TOWN_TIMEZONE).date()

ACCEPTED = [
    WOMAN,
    MAN,
    {**WOMAN, "id_number": WOMAN_ID.lower()},
    {**WOMAN, "id_number": f"  {WOMAN_ID}\t", "name": " 张三 ", "gender": " F ", "birth_date": " 1949-12-31 "},
    *({**WOMAN, "gender": word} for word in ("female", "FEMALE", "Female", "f", "F", "女 ")),
    *({**MAN, "gender": word} for word in ("male", "MALE", "m", "M", "男")),
    {**WOMAN, "phone": " 13800000000 "},
    {**WOMAN, "phone": "0519-8888888"},
    {**WOMAN, "phone": "010-88888888"},
    {**WOMAN, "phone": "051988888888"},
    {**WOMAN, "gender": "", "birth_date": "  ", "phone": "\t", "address": " ", "employer_uscc": ""},
    {**WOMAN, "gender": None, "birth_date": None, "phone": None, "address": None, "employer_uscc": None},
    {**WOMAN, "name": "买买提·艾力"},
    {**WOMAN, "name": "㐀"},
    {**WOMAN, "name": "王" * 200},
    {**WOMAN, "address": '孟河镇"小\\河"村3组12号'},
    {**WOMAN, "address": "孟河镇小河村１２组３号"},
    {**WOMAN, "address": "孟河镇小河村十二组三号楼"},
    {**WOMAN, "address": "\u3000孟河镇 小河村\u3000"},
    {**WOMAN, "address": "孟河镇\n小河村\t3组\x01"},
    {**WOMAN, "address": "\x1f"},
    {**WOMAN, "address": "\x1f孟河镇\x1c"},
    {**WOMAN, "address": "#"},
    {**WOMAN, "address": "Main St. 5 <b>&amp;</b> /"},
    {**WOMAN, "id_number": with_check("11010319900101001"), "gender": None, "birth_date": None},  # retired 2010
    {**WOMAN, "id_number": with_check(f"320411{TODAY:%Y%m%d}001"), "gender": None, "birth_date": None},
    {**WOMAN, "record_uid": "r-1", "source_record_id": "42", "match_key": "forged", "address_norm": "forged"},
]

UNDECIDED = [
    {**WOMAN, "phone": "138 0000 0000"},  # spaces, a country code, a carrier prefix: libphonenumber reads these
    {**WOMAN, "phone": "+86 138-0000-0000"},
    {**WOMAN, "phone": "17951 13800000000"},
    {**WOMAN, "phone": "17910007679"},
    {**WOMAN, "id_number": with_check("00000019900101001")},  # a birthplace GB/T 2260 never had: unknown_division
    {**WOMAN, "id_number": WOMAN_ID.translate(FULL_WIDTH)},
    {**WOMAN, "id_number": "110105-19491231-002X"},
    {**WOMAN, "id_number": "110105 19491231 002X"},
    {**WOMAN, "id_number": "110105491231002", "gender": None, "birth_date": None},
    {**WOMAN, "id_number": "1101054912310020"},
    {**WOMAN, "id_number": with_wrong_check(WOMAN_ID[:17])},
    {**WOMAN, "id_number": with_check("11010519490230002"), "birth_date": None},
    {**WOMAN, "id_number": with_check("11010518791231002"), "birth_date": None},
    {**WOMAN, "id_number": with_check("11010529991231002"), "birth_date": None},
    {**WOMAN, "id_number": with_check(f"320411{TODAY + timedelta(days=400):%Y%m%d}001")[:18], "birth_date": None},
    {**WOMAN, "id_number": None},
    {**WOMAN, "id_number": "  "},
    {**WOMAN, "id_number": None, "address": ADDRESS},
    {"name": "张三", "birth_date": "1949-12-31", "phone": "13800000000"},
    {**WOMAN, "name": "王  芳"},
    {**WOMAN, "name": "王\u3000芳"},
    {**WOMAN, "name": "\u3000王芳"},
    {**WOMAN, "name": "张三（小）"},
    {**WOMAN, "name": "Anna 王"},
    {**WOMAN, "name": '张"三'},
    {**WOMAN, "name": "张\\三"},
    {**WOMAN, "name": "\uf900"},
    {**WOMAN, "name": "张三😀"},
    {**WOMAN, "name": ""},
    {**WOMAN, "name": None},
    {**WOMAN, "name": "王" * 201},
    {**WOMAN, "gender": "男"},
    {**WOMAN, "gender": "M"},
    {**WOMAN, "gender": "Ｆ"},
    {**WOMAN, "gender": "女性"},
    {**WOMAN, "gender": "\u3000女"},
    {**WOMAN, "birth_date": "1949-12-30"},
    {**WOMAN, "birth_date": "1949/12/31"},
    {**WOMAN, "birth_date": "1949.12.31"},
    {**WOMAN, "birth_date": "19491231"},
    {**WOMAN, "birth_date": "1949年12月31日"},
    {**WOMAN, "birth_date": "1949-12-31 08:00"},
    {**WOMAN, "birth_date": "１９４９-１２-３１"},
    {**WOMAN, "birth_date": "18263"},
    {**WOMAN, "birth_date": "2018/5/3"},
    {**WOMAN, "phone": "138abc00000"},
    {**WOMAN, "phone": "1380"},
    {**WOMAN, "phone": "1" * 21},
    {**WOMAN, "phone": "１３８００００００００"},
    {**WOMAN, "phone": "\u300013800000000"},
    {**WOMAN, "phone": "13800000000\n"},
    {**WOMAN, "employer_uscc": USCC},
    {**WOMAN, "employer_uscc": "not a code"},
]


def test_awkward_rows_are_accepted_only_where_the_model_result_is_certain() -> None:
    table = text_table([*ACCEPTED, *UNDECIDED])
    batch, _ = decide(table)
    assert accepted_rows(batch) == set(range(len(ACCEPTED)))


def test_missing_columns_are_missing_values() -> None:
    decide(text_table([WOMAN, MAN]).select(["id_number", "name"]))
    batch, _ = decide(text_table([WOMAN, MAN]).select(["name", "phone", "address"]))
    assert batch.accepted.num_rows == 0


def test_an_empty_table_decides_nothing() -> None:
    batch, _ = decide(TEXT_SCHEMA.empty_table())
    assert (batch.accepted.num_rows, len(batch.undecided)) == (0, 0)


def test_columns_of_other_types_leave_their_valued_rows_to_the_model() -> None:
    table = pa.table(
        {
            "id_number": pa.array([WOMAN_ID, MAN_ID, WOMAN_ID]).dictionary_encode(),
            "name": pa.array(["张三", "李四", "王五"], pa.large_string()),
            "gender": pa.nulls(3),
            "birth_date": pa.array([date(1949, 12, 31), None, None]),
            "phone": pa.array([None, 13800000000, None]),
            "address": pa.array([ADDRESS, None, '孟河镇"小河村"'], pa.string_view()),
        }
    )
    batch, _ = decide(table)
    assert accepted_rows(batch) == {2}


def test_every_han_character_alone_is_a_name_the_fast_path_gets_right() -> None:
    """The name rule claims NFKC and _tidy_name leave Han characters alone: check each one against the model."""
    han = [chr(code) for code in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000), 0xB7)]
    batch, _ = decide(text_table([{**WOMAN, "name": char} for char in han]))
    assert batch.accepted.num_rows == len(han)


# Properties -----------------------------------------------------------------------------------------
# Each field is plain most of the time and awkward otherwise, so that examples hold rows the fast path
# accepts next to rows it must leave alone, and both halves of the rule get exercised.


def mostly(plain: st.SearchStrategy[Any], awkward: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``plain`` four times in five, else ``awkward``."""
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda usual: plain if usual else awkward)


PADDING = mostly(st.text(st.sampled_from(" \t"), max_size=2), st.text(st.sampled_from(" \t\u3000\n\x1c\xa0")))
HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x4E40)
ODD = st.sampled_from(' \t\u3000·・（）()「」Ａa\uf900\x1f"\\😀')
PHONE = st.from_regex(r"\+?[0-9\- ]{3,22}", fullmatch=True)


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(PADDING, values, PADDING).map("".join)


@st.composite
def id_and_facts(draw: st.DrawFn) -> tuple[str, date, str]:
    """A resident ID in one of the forms registers write, with the birth date and gender it was built from."""
    born = draw(mostly(st.dates(date(1900, 1, 1), TODAY), st.dates(date(1870, 1, 1), date(2040, 12, 31))))
    sequence = draw(st.integers(0, 999))
    first17 = f"{draw(st.sampled_from(['320411', '110105', '000000']))}{born:%Y%m%d}{sequence:03d}"
    code = draw(mostly(st.just(with_check(first17)), st.just(with_wrong_check(first17))))
    forms = {
        "lower": code.lower(),
        "full-width": code.translate(FULL_WIDTH),
        "old": code[:6] + code[8:17],
        "dashed": f"{code[:6]}-{code[6:14]}-{code[14:]}",
        "cut": code[:17],
    }
    code = draw(mostly(st.sampled_from([code, forms["lower"]]), st.sampled_from(list(forms.values()))))
    return code, born, "M" if sequence % 2 else "F"


@st.composite
def people(draw: st.DrawFn) -> dict[str, str | None]:
    """One register row, its fields consistent with its ID unless drawn otherwise."""
    code, born, gender = draw(id_and_facts())
    genders = {"M": ["男", "male", "MALE", "M", "m"], "F": ["女", "female", "Female", "F", "f"]}
    birth_forms = [f"{born:%Y-%m-%d}", f"{born:%Y%m%d}", f"{born.year}/{born.month}/{born.day}"]
    return {
        "id_number": draw(mostly(padded(st.just(code)), st.sampled_from([None, "", " "]))),
        "name": draw(mostly(padded(st.text(HAN, min_size=1, max_size=4)), st.one_of(st.none(), st.text(ODD | HAN)))),
        "gender": draw(
            mostly(
                st.one_of(st.none(), padded(st.sampled_from(genders[gender]))),
                st.one_of(st.sampled_from(genders["M"] + genders["F"]), st.text(max_size=3)),
            )
        ),
        "birth_date": draw(
            mostly(
                st.one_of(st.none(), padded(st.just(birth_forms[0]))),
                st.one_of(st.sampled_from(birth_forms), st.dates().map(date.isoformat), st.text(max_size=4)),
            )
        ),
        "phone": draw(mostly(st.one_of(st.none(), padded(PHONE)), st.text())),
        "address": draw(st.one_of(st.none(), st.text(max_size=12), st.sampled_from([ADDRESS, "孟河镇十二号", "#"]))),
        "employer_uscc": draw(mostly(st.sampled_from([None, ""]), st.sampled_from([USCC, "x"]))),
    }


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(people(), min_size=1, max_size=12), dropped=st.sets(st.sampled_from(INPUT_FIELDS), max_size=2))
def test_any_register_rows_are_decided_as_the_model_decides_them(
    rows: list[dict[str, str | None]], dropped: set[str]
) -> None:
    table = pa.Table.from_pylist(rows, schema=TEXT_SCHEMA)
    decide(table.drop_columns(sorted(dropped)))
