"""Plain pytest tests of the Odoo-free modules: no odoo import, no database.

Not imported by tests/__init__.py, so the Odoo test runner ignores this file; pytest (or
pytest-odoo) collects it by name. The modules are loaded from their files so that this test
needs neither Odoo nor the addon package.
"""

import doctest
import importlib.util
import pathlib

import pytest

from quicksol_bus.payload import REDACTED

_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(f"quicksol_estate_observers_{name}", _ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


csv_rules = _load("property_csv")
commands = _load("x2many_commands")
audit = _load("audit_rules")

LOOKUPS = csv_rules.Lookups(
    companies={"ta": 1, "test estate a": 1, "tb": 2},
    agents={(1, "agent a"): 10, (1, "12345-f"): 10, (1, "twin"): csv_rules.AMBIGUOUS},
    countries={"br": 76, "brazil": 76},
    federal_states={(76, "sp"): 5},
)


@pytest.mark.parametrize("module", [csv_rules, commands, audit])
def test_doctests(module):
    failures, tried = doctest.testmod(module)
    assert tried and not failures


# ---------------------------------------------------------------------- property_csv


def check(text, **kwargs):
    return csv_rules.check_csv(text.encode(), LOOKUPS, **kwargs)


def test_every_row_is_checked_and_reported_by_line():
    result = check(
        "name,estate_company,agent,state\n"
        "Good,TA,Agent A,available\n"
        ",TA,,\n"
        "Bad agent,TA,Nobody,\n"
        "\n"
        "Twin,TA,twin,sold\n"
    )
    assert result.vals_list == []
    assert result.row_count == 4
    assert [(e.line, e.column, e.code) for e in result.errors] == [
        (3, "name", "required"),
        (4, "agent", "unknown_agent"),
        (6, "agent", "ambiguous_agent"),
        (6, "state", "sold_state"),
    ]


def test_quoted_multiline_cells_keep_spreadsheet_line_numbers():
    result = check('name,estate_company\n"Two\nlines",TA\nNext,XX\n')
    assert [(e.line, e.code) for e in result.errors] == [(4, "unknown_company")]


def test_good_file_gives_vals():
    result = check(
        "name,estate_company,agent,country,federal_state,sale_price,state\n"
        'Flat, ta ,12345-F,BR,SP,"1,234.50",Disponível\n'
    )
    assert result.errors == []
    assert result.vals_list == [
        {
            "name": "Flat",
            "estate_company_id": 1,
            "agent_id": 10,
            "country_id": 76,
            "state_id": 5,
            "state": "available",
            "sale_price": 1234.5,
        }
    ]


def test_agent_must_belong_to_the_row_company():
    result = check("name,estate_company,agent\nFlat,TB,Agent A\n")
    assert [e.code for e in result.errors] == ["unknown_agent"]


def test_federal_state_needs_a_country():
    result = check("name,estate_company,federal_state\nFlat,TA,SP\n")
    assert [e.code for e in result.errors] == ["country_needed"]


def test_file_level_errors():
    assert [e.code for e in check("").errors] == ["empty_file"]
    assert [e.code for e in check("name,estate_company\n").errors] == ["empty_file"]
    assert [e.code for e in check("name,name,estate_company\nA,B,TA\n").errors] == ["duplicate_column"]
    too_many = check("name,estate_company\n" + "A,TA\n" * 4, max_rows=3)
    assert [(e.line, e.code) for e in too_many.errors] == [(5, "too_many_rows")]


def test_extra_cells_are_an_error():
    result = check("name,estate_company\nA,TA,extra\n")
    assert [(e.line, e.code) for e in result.errors] == [(2, "too_many_cells")]


def test_latin1_and_bom():
    latin = "name;estate_company\nAçaí;TA\n".encode("latin-1")
    assert csv_rules.check_csv(latin, LOOKUPS).vals_list[0]["name"] == "Açaí"
    bom = "\ufeffname,estate_company\nA,TA\n".encode()
    assert csv_rules.check_csv(bom, LOOKUPS).vals_list == [{"name": "A", "estate_company_id": 1}]


def test_thousand_rows_are_fast_and_complete():
    rows = "".join(f"Listing {i},TA,12345-F,{i}.50\n" for i in range(1000))
    result = check("name,estate_company,agent,sale_price\n" + rows)
    assert len(result.vals_list) == 1000 and not result.errors
    assert result.vals_list[999]["sale_price"] == 999.5


# ---------------------------------------------------------------------- x2many_commands


@pytest.mark.parametrize(
    "value, expected",
    [
        ([(6, 0, [1, 2])], ({1, 2}, True)),
        ([[6, False, [3]]], ({3}, True)),
        ([(4, 5)], ({5}, False)),
        ([(4, 5, 0), (3, 5, 0)], (set(), False)),
        ([7, 8], ({7, 8}, True)),
        ((7,), ({7}, True)),
        ([(5,), (4, 9)], ({9}, True)),
        ([(1, 4, {"name": "x"})], (set(), False)),
        ([], (set(), False)),
    ],
)
def test_linked_ids(value, expected):
    assert commands.linked_ids(value) == expected


@pytest.mark.parametrize("value", ["1,2", [(8, 1)], [None], 5])
def test_unknown_forms_are_refused(value):
    with pytest.raises(ValueError):
        commands.linked_ids(value)


# ---------------------------------------------------------------------- audit_rules


def test_group_fields():
    assert audit.is_group_change(["in_group_3"])
    assert not audit.is_group_change(["name", "estate_company_ids"])


def test_row_data_never_keeps_secrets_or_batches():
    data = {
        "model": "res.users",
        "res_ids": list(range(1000)),
        "vals": {"password": "p", "new_password": "q", "totp_secret": "t", "login": "l"},
    }
    row = audit.row_data("user.updated", data, 3)
    # One definition of what is secret: the bus's (quicksol_bus.payload.redact_secrets).
    assert row["vals"] == {
        "password": REDACTED,
        "new_password": REDACTED,
        "totp_secret": REDACTED,
        "login": "l",
    }
    assert audit.row_data("user.updated", {"meta": [{"api_key": "k", "apikey": "k"}]})["meta"] == [
        {"api_key": REDACTED, "apikey": REDACTED}
    ]
    assert "res_ids" not in row and row["batch_size"] == 1000 and row["res_id"] == 3


def test_ranges_round_trip():
    ids = [1, 2, 3, 10, 11, 40]
    assert audit.ids_of_ranges(audit.id_ranges(ids)) == ids


def test_audit_rows_mask_the_bus_patterns_and_the_declared_keys():
    data = {
        "model": "res.users",
        "res_ids": [7],
        "vals": {"PIN": "1", "apiKey": "k", "cpf": "123", "name": "Ana"},
    }
    row = audit.row_data("user.updated", data, 7, secret_keys=("cpf",))
    assert row["vals"] == {"PIN": "***", "apiKey": "***", "cpf": "***", "name": "Ana"}
    assert audit.row_data("user.updated", data, 7)["vals"]["cpf"] == "123"
