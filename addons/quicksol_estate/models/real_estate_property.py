"""Property: the record business users save; it emits ``property.*`` events."""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .. import commission_split
from .tenancy import check_estate_company_membership

COMMISSION_SPLIT_EVENT = "commission.split.calculated"
# Properties per commission.split.calculated event. About 230 bytes of JSON per
# sold property (two lines with ids, type, percentage, amount): 500 properties are
# about 115 KB, under half of the bus's payload limit
# (quicksol_bus.payload.DEFAULT_PAYLOAD_LIMIT, 256 KiB), which a refused event would
# otherwise make the whole sale fail. The commission.lines.created event announcing
# one event's lines (ids only) is smaller still.
COMMISSION_EVENT_MAX_PROPERTIES = 500
# Who may sell: the Sell button is shown to these groups, and write() enforces
# it, so that a prospector cannot sell by dragging a kanban card either.
SELLER_GROUPS = (
    "quicksol_estate.group_real_estate_owner,quicksol_estate.group_real_estate_agent,base.group_system"
)


class RealEstateProperty(models.Model):
    """A property for sale by one estate company.

    ``quicksol.event.emitter.mixin`` (with ``_event_prefix = 'property'``) makes
    create/write/unlink emit ``property.before_create``, ``property.created``
    and so on; observers may change ``vals`` of before-events in place.

    ``prospector_id`` points to a ``real.estate.agent``, not to ``res.users``:
    the prospector is paid a commission line, and commission lines, like the
    selling agent, reference agents. The ProspectorAutoAssign observer finds
    the creating user's agent record of the property's estate company
    (``real.estate.agent`` with ``user_id = env.user``) and puts it in
    ``vals['prospector_id']`` on ``property.before_create``.

    Selling (``state`` becoming ``sold``, by ``write`` or :meth:`action_sell`)
    computes the commission split with the plain ``commission_split`` module
    and emits one ``commission.split.calculated`` event per write, whatever the
    number of properties sold (up to 500 per event, see
    :meth:`_emit_commission_split`); the CommissionSplit observer creates the
    ``real.estate.commission.transaction`` lines from it. A sold property stays
    sold, so a sale is never paid twice.
    """

    _name = "real.estate.property"
    _description = "Real Estate Property"
    _inherit = ["mail.thread", "mail.activity.mixin", "quicksol.event.emitter.mixin"]
    _event_prefix = "property"
    _order = "id desc"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    description = fields.Html()
    property_type = fields.Selection(
        [
            ("house", "House"),
            ("apartment", "Apartment"),
            ("land", "Land"),
            ("commercial", "Commercial"),
        ],
        string="Type",
        default="house",
    )
    state = fields.Selection(
        [("draft", "Draft"), ("available", "Available"), ("sold", "Sold")],
        string="Status",
        default="draft",
        required=True,
        copy=False,
        index=True,
        tracking=True,
        group_expand=True,
    )
    street = fields.Char()
    street2 = fields.Char()
    zip = fields.Char()
    city = fields.Char()
    state_id = fields.Many2one(
        "res.country.state",
        string="Federal State",
        domain="[('country_id', '=?', country_id)]",
    )
    country_id = fields.Many2one("res.country", string="Country")
    estate_company_id = fields.Many2one(
        "real.estate.company",
        string="Estate Company",
        required=True,
        index=True,
        ondelete="restrict",
        tracking=True,
        default=lambda self: self.env.user.estate_company_ids[:1],
    )
    currency_id = fields.Many2one(related="estate_company_id.currency_id", store=True)
    sale_price = fields.Monetary(currency_field="currency_id", tracking=True)
    agent_id = fields.Many2one(
        "real.estate.agent",
        string="Agent",
        index=True,
        tracking=True,
        domain="[('estate_company_id', '=', estate_company_id)]",
        help="Selling agent; gets the commission minus the prospector's share.",
    )
    prospector_id = fields.Many2one(
        "real.estate.agent",
        string="Prospector",
        index=True,
        tracking=True,
        domain="[('estate_company_id', '=', estate_company_id)]",
        help="Agent who brought the property in (captador); gets the prospector "
        "share of the commission. Filled automatically when a prospector creates "
        "the property (with the observers addon).",
    )
    date_sold = fields.Date(
        string="Sale Date",
        compute="_compute_date_sold",
        store=True,
        readonly=False,
        copy=False,
        tracking=True,
    )
    commission_transaction_ids = fields.One2many(
        "real.estate.commission.transaction", "property_id", string="Commissions"
    )

    @api.depends("state")
    def _compute_date_sold(self):
        # A stored compute rather than a second write() in write(): stamping
        # the date must not emit a second property.updated event.
        today = fields.Date.context_today(self)
        for prop in self:
            if prop.state == "sold" and not prop.date_sold:
                prop.date_sold = today

    @api.constrains("state", "agent_id", "sale_price")
    def _check_sold_property(self):
        for prop in self.filtered(lambda p: p.state == "sold"):
            if not prop.agent_id:
                raise ValidationError(
                    self.env._(
                        "Property %(name)s cannot be sold without an agent.",
                        name=prop.name,
                    )
                )
            if prop.sale_price <= 0:
                raise ValidationError(
                    self.env._(
                        "Property %(name)s cannot be sold without a sale price.",
                        name=prop.name,
                    )
                )

    @api.constrains("estate_company_id", "agent_id", "prospector_id")
    def _check_agents_company(self):
        for prop in self:
            agents = prop.agent_id | prop.prospector_id
            if agents.estate_company_id - prop.estate_company_id:
                raise ValidationError(
                    self.env._(
                        "The agent and the prospector of %(name)s must belong to its estate company.",
                        name=prop.name,
                    )
                )

    def write(self, vals):
        if "state" not in vals:
            return super().write(vals)
        sold = self.filtered(lambda p: p.state == "sold")
        if vals["state"] != "sold" and sold:
            raise UserError(
                self.env._("A sold property cannot change its status: its commission is already paid.")
            )
        unsold = self - sold
        if vals["state"] == "sold" and unsold:
            unsold._check_can_sell()
        res = super().write(vals)
        # Re-check after the write: a before_write observer may have changed vals.
        newly_sold = unsold.filtered(lambda p: p.state == "sold")
        if newly_sold:
            newly_sold._emit_commission_split()
        return res

    def _check_can_sell(self):
        if self.env.su or self.env.user.has_groups(SELLER_GROUPS):
            return
        raise AccessError(self.env._("Only agents and owners can sell properties."))

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_set_available(self):
        self.filtered(lambda p: p.state == "draft").write({"state": "available"})

    def action_sell(self):
        """Sell the selected properties in one write, hence one commission event."""
        self.filtered(lambda p: p.state != "sold").write({"state": "sold"})

    # ------------------------------------------------------------
    # Commission split
    # ------------------------------------------------------------

    def _commission_split_lines(self):
        """Return the commission lines of these properties as JSON-ready dicts.

        Ids and numbers only: the lines travel in an event payload that may be
        stored in the outbox and sent to a worker.
        """
        lines = []
        for prop in self:
            company = prop.estate_company_id
            split = commission_split.split_commission(
                prop.sale_price,
                commission_rate=company.commission_rate,
                prospector_share=company.prospector_share,
                has_prospector=bool(prop.prospector_id),
            )
            for line in split:
                agent = prop.prospector_id if line.type == commission_split.PROSPECTOR else prop.agent_id
                lines.append(
                    {
                        "property_id": prop.id,
                        "agent_id": agent.id,
                        "type": line.type,
                        "percentage": line.percentage,
                        "amount": line.amount,
                        "estate_company_id": company.id,
                    }
                )
        return lines

    def _emit_commission_split(self):
        """Emit one commission.split.calculated event for all of ``self``.

        One sale runs the observers inline (the seller sees the commission at
        once); a bulk sale lets async-capable observers work in the background.
        Sales above ``COMMISSION_EVENT_MAX_PROPERTIES`` properties are cut into
        several events, because the bus refuses payloads over its size limit
        (256 KB by default) and a refused event would block the whole sale.

        :return: the event ids returned by the bus (a UUID, or None when every
            observer ran inline), one per event
        """
        bus = self.env["quicksol.event.bus"]
        force_sync = len(self) == 1
        event_ids = []
        for start in range(0, len(self), COMMISSION_EVENT_MAX_PROPERTIES):
            chunk = self[start : start + COMMISSION_EVENT_MAX_PROPERTIES]
            data = {
                "model": self._name,
                "res_ids": chunk.ids,
                "lines": chunk._commission_split_lines(),
            }
            event_ids.append(bus.emit(COMMISSION_SPLIT_EVENT, data, force_sync=force_sync))
        return event_ids

    @api.constrains("estate_company_id")
    def _check_estate_company_membership(self):
        check_estate_company_membership(self)
