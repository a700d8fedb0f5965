from odoo import api, fields, models
from odoo.exceptions import UserError


class QuicksolTestRecord(models.Model):
    """A minimal model that emits ``testrec.*`` events through the mixin."""

    _name = "quicksol.test.record"
    _description = "Event Bus Test Record"
    _inherit = ["quicksol.event.emitter.mixin"]
    _event_prefix = "testrec"

    name = fields.Char(required=True)
    value = fields.Integer()
    when = fields.Date()
    access_token = fields.Char()
    document = fields.Binary(attachment=False)
    notes = fields.Text()

    @api.model
    def emit_for_test(self, event_name, data):
        """Emit over RPC for the worker end-to-end tests (``emit`` itself is Python-only);
        test fixture only: this addon is never installed in production."""
        return self.env["quicksol.event.bus"].emit(event_name, data)

    def action_emit_then_fail(self):
        """Emit an async event, then fail: the transaction rolls back (RPC tests)."""
        self.env["quicksol.event.bus"].emit("testrec.custom", {"res_ids": self.ids})
        raise UserError(self.env._("failing on purpose after emitting"))


class QuicksolTestPlain(models.Model):
    """The same model without the bus, for the benchmark's baseline."""

    _name = "quicksol.test.plain"
    _description = "Event Bus Test Record without events"

    name = fields.Char(required=True)
    value = fields.Integer()
    when = fields.Date()


class QuicksolBenchRecord(models.Model):
    """Benchmark model: the mixin with exactly one inline and one async observer."""

    _name = "quicksol.bench.record"
    _description = "Event Bus Benchmark Record"
    _inherit = ["quicksol.event.emitter.mixin"]
    _event_prefix = "benchrec"

    name = fields.Char(required=True)
    value = fields.Integer()
    when = fields.Date()
