"""Plain pytest tests of commission_split: no odoo import, no database.

Not imported by tests/__init__.py, so the Odoo test runner ignores this file;
pytest (or pytest-odoo) collects it by name. The module under test is loaded
from its file so that this test needs neither Odoo nor the addon package.
"""

import doctest
import importlib.util
import itertools
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "commission_split.py"
_SPEC = importlib.util.spec_from_file_location("quicksol_estate_commission_split", _PATH)
split = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(split)


def test_doctests():
    failures, tried = doctest.testmod(split)
    assert tried and not failures


def test_seed_sale():
    lines = split.split_commission(500000, commission_rate=3, prospector_share=30)
    assert [tuple(line) for line in lines] == [
        ("prospector", 0.9, 4500.0),
        ("agent", 2.1, 10500.0),
    ]


def test_no_prospector_agent_gets_all():
    (line,) = split.split_commission(123456.78, commission_rate=6, has_prospector=False)
    assert line == ("agent", 6.0, split.commission_total(123456.78, 6))


def test_zero_share_means_no_prospector_line():
    lines = split.split_commission(1000, commission_rate=5, prospector_share=0)
    assert [line.type for line in lines] == ["agent"]


@pytest.mark.parametrize(
    "price, rate, share",
    list(
        itertools.product(
            [0, 0.01, 0.99, 333.33, 1000.01, 99999.99, 1234567.89],
            [0, 1.5, 3, 6, 7.77],
            [0, 25, 30, 33.33, 100],
        )
    ),
)
def test_lines_sum_to_total(price, rate, share):
    lines = split.split_commission(price, commission_rate=rate, prospector_share=share)
    total = split.commission_total(price, rate)
    # Compare in cents: the lines must add up exactly, not approximately.
    assert sum(round(line.amount * 100) for line in lines) == round(total * 100)
    assert all(line.amount >= 0 for line in lines)
    assert all(round(line.amount, 2) == line.amount for line in lines)
    assert lines[-1].type == "agent"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sale_price": -1},
        {"commission_rate": 101},
        {"prospector_share": -5},
        {"sale_price": "abc"},
        {"sale_price": float("nan")},
    ],
)
def test_bad_input(kwargs):
    args = {"sale_price": 100, **kwargs}
    with pytest.raises(ValueError):
        split.split_commission(**args)
