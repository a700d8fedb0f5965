import doctest

from odoo.addons.quicksol_estate import commission_split
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import EstateCase


@tagged("post_install", "-at_install")
class TestCommissionSplit(EstateCase):
    def test_doctests(self):
        # The module's doctests are its spec; run them under Odoo's runner too.
        failures, tried = doctest.testmod(commission_split)
        self.assertTrue(tried)
        self.assertFalse(failures)

    def test_lines_use_company_rule(self):
        lines = self.property_a._commission_split_lines()
        self.assertEqual(
            lines,
            [
                {
                    "property_id": self.property_a.id,
                    "agent_id": self.prospector_a.id,
                    "type": "prospector",
                    "percentage": 0.9,
                    "amount": 4500.0,
                    "estate_company_id": self.company_a.id,
                },
                {
                    "property_id": self.property_a.id,
                    "agent_id": self.agent_a.id,
                    "type": "agent",
                    "percentage": 2.1,
                    "amount": 10500.0,
                    "estate_company_id": self.company_a.id,
                },
            ],
        )

    def test_no_prospector_agent_gets_everything(self):
        # Company B: 6 % of 500,000, no prospector on property_b.
        (line,) = self.property_b._commission_split_lines()
        self.assertEqual(line["type"], "agent")
        self.assertEqual(line["agent_id"], self.agent_b.id)
        self.assertEqual(line["amount"], 30000.0)
        self.assertEqual(line["percentage"], 6.0)

    def test_lines_sum_to_total_in_cents(self):
        prop = self._new_property(self.company_b, self.agent_b, price=333333.33)
        prop.prospector_id = self.env["real.estate.agent"].create(
            {"name": "Prospector B", "estate_company_id": self.company_b.id}
        )
        lines = prop._commission_split_lines()
        self.assertEqual(len(lines), 2)
        # 6 % of 333,333.33 = 19,999.9998 -> 20,000.00; 40 % of it to the prospector.
        self.assertEqual([line["amount"] for line in lines], [8000.0, 12000.0])

    def test_company_defaults_and_checks(self):
        company = self.env["real.estate.company"].create({"name": "Defaults"})
        self.assertEqual(company.commission_rate, commission_split.DEFAULT_COMMISSION_RATE)
        self.assertEqual(company.prospector_share, commission_split.DEFAULT_PROSPECTOR_SHARE)
        with self.assertRaises(ValidationError):
            company.prospector_share = 120
