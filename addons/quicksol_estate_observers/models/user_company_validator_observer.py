"""UserCompanyValidator: owners may only give users their own estate companies."""

from odoo import api, models
from odoo.exceptions import AccessError

from .. import x2many_commands

OWNER_GROUP = "quicksol_estate.group_real_estate_owner"
FIELD = "estate_company_ids"


class UserCompanyValidatorObserver(models.AbstractModel):
    """Inline on ``user.before_create`` and ``user.before_write``: veto, nothing written.

    Multi-tenancy: an owner who may manage users must not be able to
    open another agency's data to anybody by ticking its estate company on a user. The check
    runs before the write and raises ``AccessError``, so nothing is written. Only companies
    the value *adds* are checked: an owner replacing a user's list (``Command.set``) may keep
    a company the user already had; administrators, and code running as superuser (signup,
    data loading), are not restricted.
    """

    _name = "quicksol.observer.user.company.validator"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: owners give users only their own estate companies"

    _observe_events = ["user.before_create", "user.before_write"]
    _sequence = 5

    @api.model
    def handle(self, event_name, data):
        vals = data["vals"]
        if FIELD not in vals or self._unrestricted():
            return
        value = vals[FIELD]
        try:
            linked, _replaces = x2many_commands.linked_ids(value)
            creates = x2many_commands.creates_records(value)
        except ValueError as error:
            raise AccessError(self.env._("Unsupported estate company value: %s", error)) from error
        allowed = set(self.env.user.estate_company_ids.ids)
        already = set()
        if event_name == "user.before_write" and data.get("res_ids"):
            # sudo - res.users: read which companies the edited users already have, whatever
            # record rules hide from the owner; keeping them is not giving them.
            users = self.env["res.users"].sudo().browse(data["res_ids"])
            already = set.intersection(*(set(user[FIELD].ids) for user in users))
        foreign = linked - allowed - already
        if creates or foreign:
            raise AccessError(
                self.env._(
                    "You can only give users the estate companies you belong to "
                    "(multi-tenancy isolation). Not allowed: %s",
                    self._company_names(foreign) if foreign else self.env._("a new estate company"),
                )
            )

    @api.model
    def _unrestricted(self):
        user = self.env.user
        return self.env.su or user._is_system() or not user.has_group(OWNER_GROUP)

    @api.model
    def _company_names(self, ids):
        # Ids, not names: the owner may not read the other agency, not even its name.
        return ", ".join(f"#{company_id}" for company_id in sorted(ids))
