from odoo import fields, models


class QuicksolTestRecord(models.Model):
    """A minimal model that emits ``testrec.*`` events through the mixin."""

    _name = "quicksol.test.record"
    _description = "Event Bus Test Record"
    _inherit = ["quicksol.event.emitter.mixin"]
    _event_prefix = "testrec"

    name = fields.Char(required=True)
    value = fields.Integer()
    when = fields.Date()


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
