"""Split a sale's commission between the selling agent and the prospector.

What is it?
    The commission arithmetic of the real-estate domain, as plain Python with no
    ``odoo`` import, so it can be read, unit-tested and reused (by observers,
    workers or reports) without a database.

How does it work?
    The estate company's rule gives a total commission rate (percent of the sale
    price) and the prospector's share of that commission (percent of the
    commission). The total is rounded half-up to cents first; the prospector's
    amount is rounded from it and the agent gets the remainder, so the lines
    always sum to the total exactly -- no cent is created or lost by rounding.

How to use it?
    >>> lines = split_commission(500000, commission_rate=3, prospector_share=30)
    >>> [(line.type, line.percentage, line.amount) for line in lines]
    [('prospector', 0.9, 4500.0), ('agent', 2.1, 10500.0)]
    >>> sum(line.amount for line in lines)
    15000.0

    Without a prospector the agent gets the whole commission:

    >>> split_commission(500000, commission_rate=3, has_prospector=False)
    (SplitLine(type='agent', percentage=3.0, amount=15000.0),)

    Rounding never loses a cent; the agent's line absorbs the remainder:

    >>> lines = split_commission(1000.01, commission_rate=6, prospector_share=30)
    >>> [line.amount for line in lines], commission_total(1000.01, 6)
    ([18.0, 42.0], 60.0)
    >>> lines = split_commission(333.33, commission_rate=5, prospector_share=33)
    >>> [line.amount for line in lines], commission_total(333.33, 5)
    ([5.5, 11.17], 16.67)

Caveats
    ``percentage`` is the share *of the sale price* a line stands for (3 % total
    with a 30 % prospector share gives 0.9 and 2.1), rounded to four decimals;
    ``amount`` is the authoritative figure. Amounts are floats rounded to cents
    so that they travel in JSON event payloads unchanged.
"""

from collections import namedtuple
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "AGENT",
    "DEFAULT_COMMISSION_RATE",
    "DEFAULT_PROSPECTOR_SHARE",
    "PROSPECTOR",
    "SplitLine",
    "commission_total",
    "split_commission",
]

# The seed's sale flow ("write({state: 'sold', sale_price: 500000})" answered by
# "Comissões: R$ 15.000") implies 3 % of the sale price as the total commission.
DEFAULT_COMMISSION_RATE = 3.0
# The seed gives no prospector figure; 30 % of the commission is a common
# "captação" share in Brazilian agencies. Every estate company can change both.
DEFAULT_PROSPECTOR_SHARE = 30.0

AGENT = "agent"
PROSPECTOR = "prospector"

_CENT = Decimal("0.01")
# Four decimals keep 0.9 / 2.1 style percentages exact without float noise.
_PERCENT_QUANTUM = Decimal("0.0001")
_HUNDRED = Decimal(100)

SplitLine = namedtuple("SplitLine", ["type", "percentage", "amount"])
SplitLine.__doc__ = """One commission line: who (``type``), percent of the sale price, amount."""


def _decimal(value, name):
    """Return ``value`` as a Decimal, refusing negatives and non-numbers.

    ``str()`` first so that a float such as 0.1 becomes Decimal('0.1'), the
    number the user typed, not its binary approximation.
    """
    try:
        number = Decimal(str(value))
    except ArithmeticError as error:  # decimal.InvalidOperation
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _check_percent(value, name):
    number = _decimal(value, name)
    if number > _HUNDRED:
        raise ValueError(f"{name} must be between 0 and 100, got {value!r}")
    return number


def _commission_total(sale_price, commission_rate):
    price = _decimal(sale_price, "sale_price")
    rate = _check_percent(commission_rate, "commission_rate")
    return (price * rate / _HUNDRED).quantize(_CENT, rounding=ROUND_HALF_UP)


def commission_total(sale_price, commission_rate=DEFAULT_COMMISSION_RATE):
    """Return the total commission of a sale, rounded half-up to cents.

    >>> commission_total(500000)
    15000.0
    >>> commission_total(0)
    0.0
    >>> commission_total(-1)
    Traceback (most recent call last):
    ...
    ValueError: sale_price must be a finite number >= 0, got -1
    """
    return float(_commission_total(sale_price, commission_rate))


def split_commission(
    sale_price,
    commission_rate=DEFAULT_COMMISSION_RATE,
    prospector_share=DEFAULT_PROSPECTOR_SHARE,
    has_prospector=True,
):
    """Return the commission lines of one sale, prospector line first.

    :param sale_price: sale price, >= 0, in the sale's currency
    :param commission_rate: total commission, percent of the sale price (0-100)
    :param prospector_share: prospector's part, percent of the commission (0-100)
    :param has_prospector: False when the property has no prospector; the agent
        then gets the whole commission
    :return: tuple of :class:`SplitLine`; the agent line is always present (even
        at zero, so a sale always leaves a trace), the prospector line only when
        there is a prospector with a share above zero

    >>> [tuple(line) for line in split_commission(100, 10, prospector_share=100)]
    [('prospector', 10.0, 10.0), ('agent', 0.0, 0.0)]
    >>> split_commission(100, prospector_share=101)
    Traceback (most recent call last):
    ...
    ValueError: prospector_share must be between 0 and 100, got 101
    """
    rate = _check_percent(commission_rate, "commission_rate")
    share = _check_percent(prospector_share, "prospector_share")
    total = _commission_total(sale_price, rate)
    if not has_prospector or not share:
        return (SplitLine(AGENT, float(rate.quantize(_PERCENT_QUANTUM)), float(total)),)
    prospector_amount = (total * share / _HUNDRED).quantize(_CENT, rounding=ROUND_HALF_UP)
    prospector_percent = (rate * share / _HUNDRED).quantize(_PERCENT_QUANTUM, rounding=ROUND_HALF_UP)
    return (
        SplitLine(PROSPECTOR, float(prospector_percent), float(prospector_amount)),
        SplitLine(
            AGENT,
            float(rate.quantize(_PERCENT_QUANTUM) - prospector_percent),
            float(total - prospector_amount),
        ),
    )
