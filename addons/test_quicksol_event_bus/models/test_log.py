from odoo import fields, models


class QuicksolTestLog(models.Model):
    """What the test observers did, so tests can count effects."""

    _name = "quicksol.test.log"
    _description = "Event Bus Test Log"
    _order = "id"

    observer = fields.Char()
    event_name = fields.Char()
    res_ids = fields.Char()
    uid = fields.Integer()
    lang = fields.Char()
    batch_size = fields.Integer(default=1)
    event_uuid = fields.Char()
    client_address = fields.Char()  # the address the observer saw (client_address())
