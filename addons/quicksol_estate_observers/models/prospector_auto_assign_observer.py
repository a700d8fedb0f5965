"""ProspectorAutoAssign: a prospector creating a property becomes its prospector."""

from odoo import api, models

PROSPECTOR_GROUP = "quicksol_estate.group_real_estate_prospector"


class ProspectorAutoAssignObserver(models.AbstractModel):
    """Inline on ``property.before_create``: fill ``vals['prospector_id']``.

    The prospector (captador) who brings a property in is paid a share
    of its commission, so the property must record them without relying on them to pick
    themselves in the form. It runs before the create (a before-event) because it changes
    the values being written. An explicit prospector is kept; the agent record must belong
    to the property's estate company, otherwise the property's own constraint would refuse
    the value, so no agent of that company means nothing is filled in.
    """

    _name = "quicksol.observer.prospector.auto.assign"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: assign the creating prospector"

    _observe_events = ["property.before_create"]
    _sequence = 10

    @api.model
    def handle(self, event_name, data):
        vals = data["vals"]
        if vals.get("prospector_id") or not self.env.user.has_group(PROSPECTOR_GROUP):
            return
        company_id = vals.get("estate_company_id") or self._default_company_id()
        if not company_id:
            return
        # Record rules apply: a prospector only finds agents of their own estate companies.
        agent = self.env["real.estate.agent"].search(
            [("user_id", "=", self.env.uid), ("estate_company_id", "=", company_id)], limit=1
        )
        if agent:
            vals["prospector_id"] = agent.id

    @api.model
    def _default_company_id(self):
        """The estate company the property will get when vals name none (its default)."""
        default = self.env["real.estate.property"].default_get(["estate_company_id"])
        return default.get("estate_company_id")
