"""People from a CSV file (an HR export): header mapping, E.164 numbers, every bad row as file:line.

Columns (a header row is required; order is free; names are matched
case-insensitively, with the aliases below): ``id,name,phone,email,groups``
(groups separated by ``;`` - or by ``|`` when ``;`` is the delimiter), then
any of ``department,office_location,job_title,language``. The delimiter is
``,``, ``;`` or a tab, whichever the header uses. Numbers may be written
nationally (``030 1234567``): they are read with the default region and
stored as E.164. The file is UTF-8 (a BOM is fine); anything else, a
duplicate id or an unreadable number is a problem, and ``parse`` returns the
records only when there is none: nothing is applied from a file with errors.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from failover.domain.people import Record
from failover.errors import Problem

MAX_BYTES = 50 * 1024 * 1024
MAX_PROBLEMS = 200  # more would drown the first ones; the count says how many there were
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
COLUMNS = ("id", "name", "phone", "email", "groups", "department", "office_location", "job_title", "language")
ALIASES = {
    "upn": "id",
    "userprincipalname": "id",
    "employee_id": "id",
    "display_name": "name",
    "displayname": "name",
    "full_name": "name",
    "mobile": "phone",
    "mobilephone": "phone",
    "mobile_phone": "phone",
    "personal_email": "email",
    "officelocation": "office_location",
    "office": "office_location",
    "jobtitle": "job_title",
    "title": "job_title",
    "lang": "language",
    "preferred_language": "language",
}
REQUIRED = ("id", "name")


@dataclass
class Parsed:
    records: dict[str, Record] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def _key(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().casefold())


def parse(
    data: bytes, filename: str, *, default_region: str = "US", mapping: Mapping[str, str] | None = None
) -> Parsed:
    """Every row of a CSV file as a record, or the problems (file:line: message) that stop the import."""
    result = Parsed()
    if len(data) > MAX_BYTES:
        result.add(Problem(filename, 0, f"larger than {MAX_BYTES // (1024 * 1024)} MB: not read"))
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.add(Problem(filename, line, f"not UTF-8 (byte 0x{data[exc.start]:02x}): save the file as UTF-8 CSV"))
        return result
    if "\x00" in text:
        result.add(Problem(filename, 0, "contains NUL bytes: not a text CSV file"))
        return result
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        result.add(Problem(filename, 1, "empty file: a header row is required"))
        return result
    aliases = {**ALIASES, **{_key(k): v for k, v in (mapping or {}).items()}}
    delimiter = _delimiter(lines[0], aliases)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        result.add(Problem(filename, 1, f"unreadable header: {exc}"))
        return result
    columns: list[str | None] = []
    for position, name in enumerate(header, start=1):
        key = aliases.get(_key(name), _key(name))
        if key not in COLUMNS:
            result.add(Problem(filename, 1, f"column {position} '{name.strip()}' is not one of {', '.join(COLUMNS)}"))
            columns.append(None)
        elif key in columns:
            result.add(Problem(filename, 1, f"column '{key}' given twice"))
            columns.append(None)
        else:
            columns.append(key)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        hint = "" if delimiter != "," or ";" not in lines[0] else " (is the delimiter ';'?)"
        result.add(Problem(filename, 1, f"header lacks required column(s): {', '.join(missing)}{hint}"))
    if result.problem_count:
        return result
    group_separator = "|" if delimiter == ";" else ";"
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                result.add(Problem(filename, line, f"{len(row)} fields, the header has {len(columns)}"))
                continue
            values = {key: cell.strip() for key, cell in zip(columns, row, strict=True) if key is not None}
            record = _record(values, filename, line, default_region, group_separator, result)
            if record is None:
                continue
            folded = record.id.casefold()
            if folded in first_line:
                result.add(Problem(filename, line, f"duplicate id '{record.id}' (also on line {first_line[folded]})"))
                continue
            first_line[folded] = line
            result.records[record.id] = record
    except csv.Error as exc:
        result.add(Problem(filename, reader.line_num, f"malformed CSV: {exc}"))
    if result.problem_count:
        result.records = {}
    return result


def _delimiter(header: str, aliases: Mapping[str, str]) -> str:
    def known(separator: str) -> int:
        return sum(1 for name in header.split(separator) if aliases.get(_key(name), _key(name)) in COLUMNS)

    return max((",", ";", "\t"), key=known)


def _record(
    values: dict[str, str], filename: str, line: int, region: str, separator: str, result: Parsed
) -> Record | None:
    problems_before = result.problem_count
    person_id = values.get("id", "")
    if not ID.match(person_id):
        result.add(Problem(filename, line, f"id '{person_id[:70]}' must be 1-64 letters, digits or . _ @ + -"))
    name = values.get("name", "")
    if not name:
        result.add(Problem(filename, line, "name is empty"))
    phone = _phone(values.get("phone", ""), region)
    if isinstance(phone, Problem):
        result.add(Problem(filename, line, phone.message))
        phone = None
    email = values.get("email") or None
    if email:
        try:
            email = _email(email)
        except EmailNotValidError as exc:
            result.add(Problem(filename, line, f"email: {exc}"))
    language = (values.get("language") or "").casefold() or None
    if language and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", language):
        result.add(Problem(filename, line, f"language '{language}' is not a code such as en, de or pt-br"))
    if result.problem_count != problems_before:
        return None
    groups = tuple(dict.fromkeys(g.strip() for g in values.get("groups", "").split(separator) if g.strip()))
    return Record(
        id=person_id,
        name=name,
        phone=phone,
        email=email,
        department=values.get("department") or None,
        office_location=values.get("office_location") or None,
        job_title=values.get("job_title") or None,
        language=language.split("-")[0] if language else None,
        groups=groups,
    )


_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    return validate_email(f"x@{domain}", check_deliverability=False).domain


def _email(address: str) -> str:
    """Validated and normalised; the domain (shared by thousands of rows) is checked once."""
    local, at, domain = address.rpartition("@")
    if at and _LOCAL.match(local) and len(local) <= 64:
        return f"{local}@{_domain(domain)}"
    return str(validate_email(address, check_deliverability=False).normalized)  # the full check says why


def _phone(raw: str, region: str) -> str | Problem | None:
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        return Problem("", 0, f"phone '{raw[:40]}' is not a phone number ({exc})")
    if not phonenumbers.is_valid_number(parsed):
        return Problem("", 0, f"phone '{raw[:40]}' is not a valid number (default region {region})")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def contact_entry(
    phone: str, email: str, language: str, *, region: str
) -> tuple[str | None, str | None, str | None, list[str]]:
    """What a person typed on the self-service page, checked like a CSV row: (phone, email, language, problems)."""
    problems: list[str] = []
    checked_phone = _phone(phone.strip()[:40], region)
    if isinstance(checked_phone, Problem):
        problems.append(checked_phone.message)
        checked_phone = None
    checked_email: str | None = email.strip()[:320] or None
    if checked_email:
        try:
            checked_email = _email(checked_email)
        except EmailNotValidError as exc:
            problems.append(f"email: {exc}")
            checked_email = None
    lang = language.strip().casefold()[:16] or None
    if lang and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", lang):
        problems.append(f"language '{lang}' is not a code such as en, de or pt-br")
        lang = None
    return checked_phone, checked_email, lang.split("-")[0] if lang else None, problems
