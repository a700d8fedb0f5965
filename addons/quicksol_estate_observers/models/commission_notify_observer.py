"""CommissionNotify: tell agents their commissions are ready."""

from odoo import api, models
from odoo.tools.misc import format_amount

from .user_notification import BackgroundWorkPending, notify_user


class CommissionNotifyObserver(models.AbstractModel):
    """Async on ``notification_events``, after ``commission.split.calculated``.

    Each agent with a user gets one web notification and one e-mail per event, about the
    commission lines that exist — read from the database, never from the event, so nobody
    is told about a commission that was not created. The lines are written by the
    CommissionSplit observer on another queue: on a worker, when they are not all there yet,
    :class:`BackgroundWorkPending` makes the bus retry later. Inline (one sale, sync mode)
    the split ran first (lower ``_sequence``) in the same transaction.
    """

    _name = "quicksol.observer.commission.notify"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: tell agents their commissions are ready"

    _observe_events = ["commission.split.calculated"]
    _async_capable = True
    _async_queue = "notification_events"
    _sequence = 20

    @api.model
    def handle(self, event_name, data):
        self._notify(data, wait_for_lines=False)

    @api.model
    def handle_async(self, event_name, data):
        self._notify(data, wait_for_lines=True)

    @api.model
    def _notify(self, data, wait_for_lines):
        property_ids = sorted({line["property_id"] for line in data.get("lines") or ()})
        # sudo - real.estate.commission.transaction: read every agent's lines of the sale
        # (the seller may only see their own) to tell each agent about theirs.
        lines = (
            self.env["real.estate.commission.transaction"]
            .sudo()
            .search([("property_id", "in", property_ids)])
        )
        missing = set(property_ids) - set(lines.property_id.ids)
        if missing and wait_for_lines:
            raise BackgroundWorkPending(f"commission lines of {len(missing)} properties are not written yet")
        mails = self.env["mail.mail"]
        for agent in lines.agent_id.filtered("user_id"):
            user = agent.user_id
            agent_lines = lines.filtered(lambda line, agent=agent: line.agent_id == agent)
            env = self.with_context(lang=user.lang).env
            currency = agent_lines[:1].currency_id
            properties = agent_lines.property_id
            names = ", ".join(properties[:5].mapped("name")) + ("…" if len(properties) > 5 else "")
            mails |= notify_user(
                user,
                env._("Your commissions are ready"),
                env._(
                    "%(count)s commission line(s), %(amount)s in total, for %(names)s.",
                    count=len(agent_lines),
                    amount=format_amount(env, sum(agent_lines.mapped("amount")), currency),
                    names=names,
                ),
            )
        return mails
