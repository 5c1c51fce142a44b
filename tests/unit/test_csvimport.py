"""The CSV loader: header mapping, E.164 with a default region, every bad row as file:line, nothing half-read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.domain import csvimport
from failover.domain.people import Record


def problems(data: bytes, region: str = "US") -> list[str]:
    return [str(p) for p in csvimport.parse(data, "f.csv", default_region=region).problems]


def test_headers_are_mapped_and_numbers_normalised() -> None:
    parsed = csvimport.parse(
        "\ufeffUPN,Display Name,Mobile,Personal Email,Groups,Office,Title,Lang\n"
        "a@x.example,Anna,030 1234567,anna@home.example,oncall;it,Berlin HQ,Engineer,de-DE\n".encode(),
        "f.csv",
        default_region="DE",
    )
    assert parsed.problems == []
    assert parsed.records == {
        "a@x.example": Record(
            "a@x.example",
            "Anna",
            phone="+49301234567",
            email="anna@home.example",
            office_location="Berlin HQ",
            job_title="Engineer",
            language="de",
            groups=("oncall", "it"),
        )
    }


def test_semicolon_and_tab_delimiters_are_recognised() -> None:
    assert csvimport.parse(b"id;name;groups\na;A;x|y\n", "f.csv").records["a"].groups == ("x", "y")
    assert csvimport.parse(b"id\tname\na\tA\n", "f.csv").records["a"].name == "A"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", ["f.csv:1: empty file: a header row is required"]),
        (b"id,name\na,Caf\xe9\n", ["f.csv:2: not UTF-8 (byte 0xe9): save the file as UTF-8 CSV"]),
        (
            b"id|name\na|A\n",
            [
                "f.csv:1: column 1 'id|name' is not one of " + ", ".join(csvimport.COLUMNS),
                "f.csv:1: header lacks required column(s): id, name",
            ],
        ),
        (b"id,name,shoe\n", ["f.csv:1: column 3 'shoe' is not one of " + ", ".join(csvimport.COLUMNS)]),
        (b"id,name\na,A\na,B\n", ["f.csv:3: duplicate id 'a' (also on line 2)"]),
        (b"id,name\nA,A\na,B\n", ["f.csv:3: duplicate id 'a' (also on line 2)"]),
        (b"id,name,phone\na,A,12\n", ["f.csv:2: phone '12' is not a valid number (default region US)"]),
        (
            b"id,name,phone\na,A,call me\n",
            [
                "f.csv:2: phone 'call me' is not a phone number "
                "((1) The string supplied did not seem to be a phone number.)"
            ],
        ),
        (b"id,name,email\na,A,not-an-address\n", ["f.csv:2: email: An email address must have an @-sign."]),
        (b"id,name\na,A,extra\n", ["f.csv:2: 3 fields, the header has 2"]),
        (
            b"id,name\nbad id,A\n,B\n",
            [
                "f.csv:2: id 'bad id' must be 1-64 letters, digits or . _ @ + -",
                "f.csv:3: id '' must be 1-64 letters, digits or . _ @ + -",
            ],
        ),
        (b'id,name\na,"unterminated\n', ["f.csv:2: malformed CSV: unexpected end of data"]),
        (b"id,name\x00\n", ["f.csv: contains NUL bytes: not a text CSV file"]),
    ],
)
def test_bad_files_name_every_problem_and_yield_no_record(data: bytes, expected: list[str]) -> None:
    parsed = csvimport.parse(data, "f.csv")
    assert [str(p) for p in parsed.problems] == expected
    assert parsed.records == {}


def test_one_bad_row_among_good_ones_applies_nothing() -> None:
    parsed = csvimport.parse(b"id,name,phone\na,A,+12025550101\nb,B,nope\nc,C,\n", "f.csv")
    assert parsed.records == {} and parsed.problem_count == 1


def test_files_over_the_limit_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvimport, "MAX_BYTES", 100)
    assert problems(b"id,name\n" + b"a,A\n" * 30) == ["f.csv: larger than 0 MB: not read"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_records_or_located_problems_never_an_exception(data: bytes) -> None:
    parsed = csvimport.parse(b"id,name,phone,email,groups\n" + data, "f.csv")
    assert bool(parsed.records) != bool(parsed.problems) or (not parsed.records and not parsed.problems)
    assert all(p.file == "f.csv" for p in parsed.problems)


def test_graph_users_map_to_records_by_the_configured_fields() -> None:
    from failover.domain.people import Mapping_
    from failover.sources.graph_users import to_record

    mapping = Mapping_(email="onPremisesExtensionAttributes.extensionAttribute1")
    user = {
        "id": "oid-1",
        "userPrincipalName": "Anna@Contoso.example",
        "displayName": "Anna",
        "mobilePhone": None,
        "businessPhones": ["030 1234567"],
        "usageLocation": "DE",
        "preferredLanguage": "de-DE",
        "officeLocation": None,
        "onPremisesExtensionAttributes": {"extensionAttribute1": "anna@home.example"},
    }
    assert to_record(user, mapping) == Record(
        "anna@contoso.example", "Anna", phone="+49301234567", email="anna@home.example", language="de"
    )
    assert to_record({**user, "accountEnabled": False}, mapping) is None
    assert to_record({**user, "userPrincipalName": None}, mapping) is None
    assert to_record({**user, "userPrincipalName": "x" * 60 + "@contoso.example"}, mapping) is None
    assert to_record({**user, "businessPhones": ["not a number"]}, mapping).phone is None  # type: ignore[union-attr]
