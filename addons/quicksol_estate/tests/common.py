"""Shared fixtures: two estate companies with one user per role each."""

from odoo.tests import TransactionCase, new_test_user

ESTATE_GROUPS = "quicksol_estate.group_real_estate_"


class EstateCase(TransactionCase):
    """Build the fixtures in code, not from demo data, so tests also run on a
    database installed without demo."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Chatter tracking is noise here and slows every write down.
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        Company = cls.env["real.estate.company"]
        cls.company_a = Company.create(
            {
                "name": "Test Estate A",
                "code": "TA",
                "commission_rate": 3.0,
                "prospector_share": 30.0,
            }
        )
        cls.company_b = Company.create(
            {
                "name": "Test Estate B",
                "code": "TB",
                "commission_rate": 6.0,
                "prospector_share": 40.0,
            }
        )
        cls.users = {}
        for key, company in (("a", cls.company_a), ("b", cls.company_b)):
            for role in ("owner", "agent", "prospector", "auditor"):
                cls.users[f"{role}_{key}"] = new_test_user(
                    cls.env,
                    login=f"test_{role}_{key}",
                    groups=f"base.group_user,{ESTATE_GROUPS}{role}",
                    estate_company_ids=[(6, 0, company.ids)],
                )
        Agent = cls.env["real.estate.agent"]
        cls.agent_a = Agent.create(
            {
                "name": "Agent A",
                "user_id": cls.users["agent_a"].id,
                "estate_company_id": cls.company_a.id,
            }
        )
        cls.prospector_a = Agent.create(
            {
                "name": "Prospector A",
                "user_id": cls.users["prospector_a"].id,
                "estate_company_id": cls.company_a.id,
            }
        )
        cls.agent_b = Agent.create(
            {
                "name": "Agent B",
                "user_id": cls.users["agent_b"].id,
                "estate_company_id": cls.company_b.id,
            }
        )
        cls.property_a = cls._new_property(cls.company_a, cls.agent_a, cls.prospector_a)
        cls.property_b = cls._new_property(cls.company_b, cls.agent_b)

    @classmethod
    def _new_property(cls, company, agent=None, prospector=None, price=500000.0, **vals):
        return cls.env["real.estate.property"].create(
            {
                "name": f"Property of {company.name}",
                "estate_company_id": company.id,
                "agent_id": agent.id if agent else False,
                "prospector_id": prospector.id if prospector else False,
                "sale_price": price,
                "state": "available",
                **vals,
            }
        )
