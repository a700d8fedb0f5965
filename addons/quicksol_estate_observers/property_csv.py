"""Read and check a CSV file of properties before anything is created (no ``odoo`` import).

What is it?
    The parsing and validation behind the property import wizard, in plain Python so that
    it is unit-tested without a database and every rule is in one place. The wizard only
    builds the lookups (what the importing user may see) and translates the errors.

How does it work?
    :func:`check_csv` decodes the file (UTF-8, with or without BOM, else Latin-1), detects
    ``,`` or ``;`` as separator, checks the header, then checks **every** row and returns a
    :class:`CheckResult` with the ``vals`` of the good rows and a :class:`RowError` for each
    problem (line number as a spreadsheet shows it: the header is line 1). The caller
    creates nothing unless ``errors`` is empty.

How to use it?
    >>> lookups = Lookups(companies={"ta": 1, "test estate a": 1},
    ...                   agents={(1, "agent a"): 10, (1, "12345-f"): 10})
    >>> result = check_csv(b"name;estate_company;agent;sale_price\\nFlat;TA;12345-F;1.234,50\\n"
    ...                    b"House;XX;;\\n", lookups)
    >>> result.errors, result.vals_list
    ([RowError(line=3, column='estate_company', code='unknown_company', params={'value': 'XX'})], [])
    >>> check_csv(b"name;estate_company;agent;sale_price\\nFlat;TA;12345-F;1.234,50\\n",
    ...           lookups).vals_list
    [{'name': 'Flat', 'estate_company_id': 1, 'agent_id': 10, 'sale_price': 1234.5}]

Caveats
    Errors carry a ``code`` and ``params``, not text: the wizard turns them into messages in
    the user's language. Sold properties cannot be imported (a sale goes through the Sell
    action, which splits the commission). Lookups are case-insensitive and ignore
    surrounding spaces; a name shared by two records is reported as ambiguous, never guessed.
"""

import csv
import io
import re
from collections import namedtuple

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "MAX_ROWS",
    "AMBIGUOUS",
    "Lookups",
    "RowError",
    "CheckResult",
    "check_csv",
    "parse_price",
    "add_key",
]

# Columns, in the order of the template; only ``name`` and ``estate_company`` are required.
COLUMNS = (
    "name",
    "street",
    "street2",
    "zip",
    "city",
    "federal_state",
    "country",
    "state",
    "sale_price",
    "agent",
    "estate_company",
)
REQUIRED_COLUMNS = ("name", "estate_company")
# A bound on what one wizard run holds in memory and one transaction writes (the seed's
# bulk case is 1,000 rows; 50,000 leaves room without risking a worker's memory limit).
MAX_ROWS = 50000
NAME_MAX_LENGTH = 255
# Status values accepted, English and Portuguese (with and without accents).
STATES = {
    "draft": "draft",
    "rascunho": "draft",
    "available": "available",
    "disponivel": "available",
    "disponível": "available",
}
SOLD_STATES = ("sold", "vendido")
AMBIGUOUS = object()  # lookup value when a key names several records

Lookups = namedtuple(
    "Lookups", ["companies", "agents", "countries", "federal_states"], defaults=({}, {}, {}, {})
)
Lookups.__doc__ = """What the importing user may reference, keys lower-cased and stripped.

``companies``: code or name -> id; ``agents``: (company id, name or CRECI) -> id;
``countries``: ISO code or name -> id; ``federal_states``: (country id, code or name) -> id.
A value of :data:`AMBIGUOUS` means the key names several records.
"""
RowError = namedtuple("RowError", ["line", "column", "code", "params"])
CheckResult = namedtuple("CheckResult", ["vals_list", "errors", "row_count"])

_PRICE = re.compile(r"^\d+(?:[.,]\d+)*$")


def add_key(mapping, key, value):
    """Add ``key`` (normalised) -> ``value`` to a lookup, marking clashes as ambiguous.

    >>> lookup = {}
    >>> add_key(lookup, " Centro ", 1); add_key(lookup, "centro", 2); add_key(lookup, "", 3)
    >>> lookup["centro"] is AMBIGUOUS, len(lookup)
    (True, 1)
    """
    key = _norm(key) if isinstance(key, str) else tuple(_norm(k) if isinstance(k, str) else k for k in key)
    if not key or (isinstance(key, tuple) and not key[-1]):
        return
    if key in mapping and mapping[key] != value:
        mapping[key] = AMBIGUOUS
    else:
        mapping[key] = value


def _norm(text):
    return " ".join((text or "").split()).lower()


def parse_price(text):
    """Parse a price as people type it: ``1234.5``, ``1.234,50``, ``1,234.50``, ``1234,5``.

    The last ``.`` or ``,`` followed by one or two digits is the decimal separator; other
    separators group thousands. Returns a float, or None when ``text`` is not a price.

    >>> [parse_price(t) for t in ("1234.5", "1.234,50", "1,234.50", "1234,5", "500000")]
    [1234.5, 1234.5, 1234.5, 1234.5, 500000.0]
    >>> [parse_price(t) for t in ("abc", "-3", "1..2", "")]
    [None, None, None, None]
    """
    text = (text or "").strip().replace(" ", "")
    if not _PRICE.match(text):
        return None
    match = re.search(r"[.,](\d{1,2})$", text)
    if match:
        integer = re.sub(r"[.,]", "", text[: match.start()])
        decimals = match.group(1)
    else:
        integer, decimals = re.sub(r"[.,]", "", text), "0"
    if not integer.isdigit():
        return None
    return float(f"{integer}.{decimals}")


def _decode(content):
    if isinstance(content, str):
        return content
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("undecodable")  # latin-1 decodes any byte: unreachable, kept for safety


def _dialect(text):
    first_line = text.split("\n", 1)[0]
    return ";" if first_line.count(";") > first_line.count(",") else ","


def check_csv(content, lookups, max_rows=MAX_ROWS):
    """Check every row of ``content`` (bytes or text); see the module docstring.

    File-level problems (empty file, missing or unknown columns, too many rows) are errors
    on line 1 or 0 and stop the row checks, since rows cannot be read without their header.

    >>> check_csv(b"", Lookups()).errors
    [RowError(line=0, column='', code='empty_file', params={})]
    >>> check_csv(b"name,price\\n", Lookups()).errors  # doctest: +NORMALIZE_WHITESPACE
    [RowError(line=1, column='estate_company', code='missing_column', params={}),
     RowError(line=1, column='price', code='unknown_column', params={})]
    """
    text = _decode(content)
    if not text.strip():
        return CheckResult([], [RowError(0, "", "empty_file", {})], 0)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(text))
    header = [_norm(column) for column in next(reader)]
    errors = [
        RowError(1, column, "missing_column", {}) for column in REQUIRED_COLUMNS if column not in header
    ]
    errors += [
        RowError(1, column, "unknown_column", {}) for column in header if column and column not in COLUMNS
    ]
    errors += [
        RowError(1, column, "duplicate_column", {})
        for index, column in enumerate(header)
        if column and column in header[:index]
    ]
    if errors:
        return CheckResult([], errors, 0)
    vals_list, row_count = [], 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines (often the last one) are not rows
        row_count += 1
        if row_count > max_rows:
            return CheckResult(
                [], [RowError(reader.line_num, "", "too_many_rows", {"max": max_rows})], row_count
            )
        line = reader.line_num
        if len(row) > len(header):
            errors.append(RowError(line, "", "too_many_cells", {"count": len(row), "expected": len(header)}))
            continue
        cells = {
            column: (row[index].strip() if index < len(row) else "")
            for index, column in enumerate(header)
            if column
        }
        vals, row_errors = _check_row(line, cells, lookups)
        errors += row_errors
        if not row_errors:
            vals_list.append(vals)
    if not row_count and not errors:
        errors.append(RowError(0, "", "empty_file", {}))
    return CheckResult(vals_list if not errors else [], errors, row_count)


def _check_row(line, cells, lookups):
    """Return ``(vals, errors)`` for one row's ``cells`` (column -> stripped text)."""
    errors = []

    def error(column, code, **params):
        errors.append(RowError(line, column, code, params))

    vals = {}
    name = cells.get("name", "")
    if not name:
        error("name", "required")
    elif len(name) > NAME_MAX_LENGTH:
        error("name", "too_long", max=NAME_MAX_LENGTH)
    else:
        vals["name"] = name
    for column in ("street", "street2", "zip", "city"):
        if cells.get(column):
            vals[column] = cells[column]
    company_id = _find(
        lookups.companies, cells.get("estate_company", ""), "estate_company", "company", error, required=True
    )
    if company_id:
        vals["estate_company_id"] = company_id
        agent_id = _find(
            lookups.agents,
            (company_id, cells.get("agent", "")),
            "agent",
            "agent",
            error,
            shown=cells.get("agent", ""),
        )
        if agent_id:
            vals["agent_id"] = agent_id
    country_id = _find(lookups.countries, cells.get("country", ""), "country", "country", error)
    if country_id:
        vals["country_id"] = country_id
    if cells.get("federal_state"):
        if not country_id:
            error("federal_state", "country_needed", value=cells["federal_state"])
        else:
            state_id = _find(
                lookups.federal_states,
                (country_id, cells["federal_state"]),
                "federal_state",
                "federal_state",
                error,
                shown=cells["federal_state"],
            )
            if state_id:
                vals["state_id"] = state_id
    status = _norm(cells.get("state", ""))
    if status in SOLD_STATES:
        error("state", "sold_state", value=cells["state"])
    elif status and status not in STATES:
        error("state", "bad_state", value=cells["state"])
    elif status:
        vals["state"] = STATES[status]
    if cells.get("sale_price"):
        price = parse_price(cells["sale_price"])
        if price is None:
            error("sale_price", "bad_price", value=cells["sale_price"])
        else:
            vals["sale_price"] = price
    return vals, errors


def _find(lookup, key, column, kind, error, required=False, shown=None):
    """Look ``key`` up; report unknown/ambiguous values; return the id or None."""
    shown = key if shown is None else shown
    normalised = _norm(key) if isinstance(key, str) else (key[0], _norm(key[1]))
    if not (normalised if isinstance(normalised, str) else normalised[1]):
        if required:
            error(column, "required")
        return None
    found = lookup.get(normalised)
    if found is AMBIGUOUS:
        error(column, f"ambiguous_{kind}", value=shown)
        return None
    if not found:
        error(column, f"unknown_{kind}", value=shown)
        return None
    return found
