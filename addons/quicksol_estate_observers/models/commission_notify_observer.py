"""CommissionNotify: tell agents their commissions are ready."""

from odoo import api, models
from odoo.tools.misc import format_amount

from .commission_split_observer import LINES_CREATED_EVENT
from .user_notification import notify_user


class CommissionNotifyObserver(models.AbstractModel):
    """Async on ``notification_events``, after ``commission.lines.created``.

    The CommissionSplit observer emits ``commission.lines.created`` in the transaction that
    creates the lines, so this observer runs only once they exist (no waiting, no retry
    loop), once per event. Each agent with a user gets one web notification and one e-mail
    per event, about the commission lines of the event as read from the database, so
    nobody is told about a commission that does not exist. A single sale announces its
    lines inline (``force_sync``): both agents are told when the save returns.
    """

    _name = "quicksol.observer.commission.notify"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: tell agents their commissions are ready"

    _observe_events = [LINES_CREATED_EVENT]
    _async_capable = True
    _async_queue = "notification_events"
    _sequence = 20

    @api.model
    def handle(self, event_name, data):
        return self._notify(data)

    @api.model
    def _notify(self, data):
        # sudo - real.estate.commission.transaction: read every agent's lines of the sale
        # (the seller may only see their own) to tell each agent about theirs.
        lines = (
            self.env["real.estate.commission.transaction"].sudo().browse(data.get("res_ids") or []).exists()
        )
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
