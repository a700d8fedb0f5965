"""Users: membership of estate companies, and ``user.*`` events."""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..user_invitation import ForeignCompanyError, InvitationError, clean_invitation

OWNER_GROUP = "quicksol_estate.group_real_estate_owner"
ROLE_GROUP = "quicksol_estate.group_real_estate_%s"


class ResUsers(models.Model):
    """Users emit ``user.before_create``, ``user.created``, ``user.before_write``,
    ``user.updated``... through the bus mixin, so observers can validate the
    estate companies given to a user and audit group changes.
    """

    _name = "res.users"
    _inherit = ["res.users", "quicksol.event.emitter.mixin"]
    _event_prefix = "user"

    # Same relation table as real.estate.company.user_ids: one membership, two sides.
    estate_company_ids = fields.Many2many(
        "real.estate.company",
        "real_estate_company_res_users_rel",
        "user_id",
        "estate_company_id",
        string="Estate Companies",
        groups="base.group_user",
        help="Estate companies whose data this user may see and edit.",
    )

    @api.model
    def create_estate_user(self, values):
        """Create a user of the caller's estate companies (Odoo's signup module, when
        installed, e-mails the invitation to ``email``).

        For owners, who cannot create users: creating ``res.users`` needs Administration/
        Access Rights, and that group would also let them grant Administration or any
        company. So this path creates with ``sudo`` instead, after
        :func:`~odoo.addons.quicksol_estate.user_invitation.clean_invitation` reduced the
        request to name, login, e-mail, language, time zone, the caller's own estate
        companies and the roles an owner may grant (agent, prospector, auditor); groups
        are set here (internal user + those roles), never taken from the caller, and the
        user gets the owner's own company. ``values``: ``{'name', 'login', 'email',
        'estate_company_ids': [ids], 'roles': ['agent', ...]}``. Returns the new user id.
        """
        caller = self.env.user
        if not (caller._is_system() or caller.has_group(OWNER_GROUP)):
            raise AccessError(self.env._("Only owners of an estate company may add its users."))
        allowed = caller.estate_company_ids.ids
        if caller._is_system():
            allowed = self.env["real.estate.company"].sudo().search([]).ids
        try:
            clean = clean_invitation(values, allowed)
        except ForeignCompanyError as error:
            # The same refusal as the UserCompanyValidator observer gives on other paths.
            raise AccessError(
                self.env._(
                    "You can only give users the estate companies you belong to "
                    "(multi-tenancy isolation). Not allowed: %s",
                    ", ".join(f"#{company_id}" for company_id in error.ids),
                )
            ) from error
        except InvitationError as error:
            raise UserError(self.env._("Cannot create this user: %s", str(error))) from error
        groups = [self.env.ref("base.group_user").id] + [
            self.env.ref(ROLE_GROUP % role).id for role in clean.pop("roles")
        ]
        company = caller.company_id
        vals = dict(
            clean,
            estate_company_ids=[fields.Command.set(clean["estate_company_ids"])],
            groups_id=[fields.Command.set(groups)],
            company_id=company.id,
            company_ids=[fields.Command.set(company.ids)],
        )
        # sudo - res.users: owners have no create right on users (see the docstring); the
        # values are the validated ones above, nothing else of the caller's reaches create.
        user = self.sudo().with_context(no_reset_password=not clean.get("email")).create(vals)
        return user.id
