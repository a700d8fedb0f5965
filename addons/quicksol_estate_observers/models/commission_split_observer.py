"""CommissionSplit: create the commission lines of sold properties."""

import logging

from odoo import api, models
from odoo.exceptions import ValidationError
from odoo.tools import float_compare

_logger = logging.getLogger(__name__)

EVENT = "commission.split.calculated"


class CommissionSplitObserver(models.AbstractModel):
    """Hybrid on ``commission.split.calculated``: one sale inline, bulk sales on a worker.

    quicksol_estate emits the event with ``force_sync=True`` for a single sale, so the seller
    sees both lines when the save returns; a bulk sale goes to ``commission_events`` and a
    worker may hand many events to :meth:`handle_async_batch`, which writes every line of
    every event with one batched ``create()`` (seed 001: 1 query instead of 1,000).

    The event's lines are not trusted blindly: ``emit`` is reachable by any user over RPC,
    and lines are created with ``sudo()``. Each line must match the split the property's
    estate company rule gives now for a sold property, or the event fails (permanently, on a
    worker: an administrator sees it in the Event Bus menu). A property that already has
    commission lines is skipped: the bus runs an event once, this makes sure a property is
    never paid twice whatever the events (the database has a unique constraint too).
    """

    _name = "quicksol.observer.commission.split"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: create commission lines from a sale"

    _observe_events = [EVENT]
    _async_capable = True
    _async_queue = "commission_events"
    _async_batch = True
    _sequence = 10

    @api.model
    def handle(self, event_name, data):
        self._create_lines([data])

    @api.model
    def handle_async_batch(self, events):
        self._create_lines([data for _name, data in events])

    @api.model
    def _create_lines(self, payloads):
        """Create the lines of ``payloads`` not created yet, in one ``create()``."""
        lines = [line for data in payloads for line in data.get("lines") or ()]
        if not lines:
            return self.env["real.estate.commission.transaction"]
        # sudo - real.estate.commission.transaction: agents only read commission lines;
        # the observer writes them on the seller's behalf from checked sale data.
        Transaction = self.env["real.estate.commission.transaction"].sudo()
        property_ids = {line["property_id"] for line in lines}
        paid = set(Transaction.search([("property_id", "in", list(property_ids))]).mapped("property_id").ids)
        # sudo - real.estate.property: recompute the split whatever the user may read now.
        properties = self.env["real.estate.property"].sudo().browse(sorted(property_ids - paid)).exists()
        expected = self._expected_lines(properties)
        vals_list, seen = [], set()
        for line in lines:
            key = (line["property_id"], line["type"])
            if line["property_id"] in paid or key in seen:
                continue  # already split (earlier event, or twice in this batch)
            self._check_line(line, expected)
            seen.add(key)
            vals_list.append(
                {
                    "property_id": line["property_id"],
                    "agent_id": line["agent_id"],
                    "type": line["type"],
                    "percentage": line["percentage"],
                    "amount": line["amount"],
                }
            )
        if len(seen) < len(lines):
            _logger.info(
                "commission split: %d of %d lines already existed, skipped",
                len(lines) - len(seen),
                len(lines),
            )
        return Transaction.create(vals_list)

    @api.model
    def _expected_lines(self, properties):
        sold = properties.filtered(lambda prop: prop.state == "sold")
        return {(line["property_id"], line["type"]): line for line in sold._commission_split_lines()}

    @api.model
    def _check_line(self, line, expected):
        want = expected.get((line["property_id"], line["type"]))
        if (
            not want
            or want["agent_id"] != line["agent_id"]
            or float_compare(want["amount"], line["amount"], precision_digits=2)
        ):
            raise ValidationError(
                self.env._(
                    "Commission line refused for property #%(property)s (%(type)s): it does not "
                    "match a sale of that property under its estate company's commission rule.",
                    property=line["property_id"],
                    type=line["type"],
                )
            )
