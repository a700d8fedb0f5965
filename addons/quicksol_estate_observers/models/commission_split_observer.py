"""CommissionSplit: create the commission lines of sold properties."""

import logging

from odoo import api, models
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)

EVENT = "commission.split.calculated"
LINES_CREATED_EVENT = "commission.lines.created"


class CommissionSplitObserver(models.AbstractModel):
    """Hybrid on ``commission.split.calculated``: one sale inline, bulk sales on a worker.

    quicksol_estate emits the event with ``force_sync=True`` for a single sale, so the seller
    sees both lines when the save returns; a bulk sale goes to ``commission_events`` and a
    worker may hand many events to :meth:`handle_async_batch`, which writes every line of
    every event with one batched ``create()`` (1 query instead of 1,000).

    The lines are created as the event carries them: the split was computed by
    ``real.estate.property`` when the sale was saved, and only Python code can emit
    (``emit`` is not callable over RPC). They are not computed again here, so an owner
    changing the commission rate or the agent between the sale and the worker's run does
    not change (or fail) a sale already made. Two guards remain: a line of a property that
    is not sold is refused (``ValidationError``: permanent on a worker, an administrator
    sees it in the Event Bus menu), and a property that already has commission lines is
    skipped: the bus runs an event once, this makes sure a property is never paid twice
    whatever the events (the database has a unique constraint too).

    When lines were created, it emits ``commission.lines.created`` (one per sale event)
    in the same transaction, for the CommissionNotify observer: see :meth:`_announce`.
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
        # Inline: a single sale (force_sync) or sync mode; the announcement stays inline
        # too, so the agents of a single sale are told when the save returns.
        self._create_lines([data], force_sync=True)

    @api.model
    def handle_async(self, event_name, data):
        self._create_lines([data])

    @api.model
    def handle_async_batch(self, events):
        self._create_lines([data for _name, data in events])

    @api.model
    def _create_lines(self, payloads, force_sync=False):
        """Create the lines of ``payloads`` not created yet, in one ``create()``, then
        announce them (one ``commission.lines.created`` per payload that created lines)."""
        lines = [(index, line) for index, data in enumerate(payloads) for line in data.get("lines") or ()]
        # sudo - real.estate.commission.transaction: agents only read commission lines;
        # the observer writes them on the seller's behalf from the sale's event.
        Transaction = self.env["real.estate.commission.transaction"].sudo()
        if not lines:
            return Transaction
        property_ids = {line["property_id"] for _index, line in lines}
        paid = set(Transaction.search([("property_id", "in", list(property_ids))]).mapped("property_id").ids)
        # sudo - real.estate.property: whether a property is sold, whatever the user may read now.
        sold = set(
            self.env["real.estate.property"]
            .sudo()
            .search([("id", "in", sorted(property_ids - paid)), ("state", "=", "sold")])
            .ids
        )
        vals_list, sources, seen = [], [], set()
        for index, line in lines:
            key = (line["property_id"], line["type"])
            if line["property_id"] in paid or key in seen:
                continue  # already split (earlier event, or twice in this batch)
            if line["property_id"] not in sold:
                raise ValidationError(
                    self.env._(
                        "Commission line refused for property #%(property)s (%(type)s): "
                        "the property is not sold.",
                        property=line["property_id"],
                        type=line["type"],
                    )
                )
            seen.add(key)
            sources.append(index)
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
        created = Transaction.create(vals_list)
        self._announce(created, sources, force_sync)
        return created

    @api.model
    def _announce(self, created, sources, force_sync):
        """Emit ``commission.lines.created`` for the lines just created, one event per sale
        event they came from (``sources``: the payload index of each line).

        Data: ``{'model': 'real.estate.commission.transaction', 'res_ids': line ids,
        'property_ids', 'agent_ids'}`` — at most the lines of one sale event (1,000 lines of
        500 properties), so it stays under the bus's payload limit like the sale event.
        The outbox rows are written in this transaction (on a worker: the one of its RPC
        call, published after it commits), so the event exists exactly when the lines do.
        """
        by_source = {}
        for line, index in zip(created, sources, strict=True):
            by_source.setdefault(index, []).append(line)
        bus = self.env["quicksol.event.bus"]
        for index in sorted(by_source):
            lines = created.browse([line.id for line in by_source[index]])
            bus.emit(
                LINES_CREATED_EVENT,
                {
                    "model": lines._name,
                    "res_ids": lines.ids,
                    "property_ids": sorted(set(lines.property_id.ids)),
                    "agent_ids": sorted(set(lines.agent_id.ids)),
                },
                force_sync=force_sync,
            )
