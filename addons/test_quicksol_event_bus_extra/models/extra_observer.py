from odoo import api, models


class ExtraObserver(models.AbstractModel):
    """Logs every created test record, while this addon is installed."""

    _name = "quicksol.test.observer.extra"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer from an addon installed at run time"
    _observe_events = ["testrec.created"]

    @api.model
    def handle(self, event_name, data):
        # sudo - quicksol.test.log: the test log is written for any user.
        self.env["quicksol.test.log"].sudo().create(
            {
                "observer": self._name,
                "event_name": event_name,
                "res_ids": ",".join(map(str, data["res_ids"])),
            }
        )
