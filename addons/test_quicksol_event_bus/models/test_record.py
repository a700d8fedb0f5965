import os

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

# Set only in the environment of the Odoo servers the test suites start (conftest.py's
# odoo_test_server): the one switch that opens this addon's RPC helper.
TEST_STACK_VARIABLE = "QSB_TEST_FIXTURES"


def check_test_stack(env):
    """Refuse an RPC fixture method outside a test stack, or to anyone but an administrator:
    a database where this addon got installed by mistake exposes nothing callable."""
    if os.environ.get(TEST_STACK_VARIABLE) != "1":
        raise AccessError(env._("Test fixtures are disabled outside the test stack."))
    if not (env.su or env.user._is_system()):
        raise AccessError(env._("Test fixtures are reserved to administrators."))


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
        """Emit over RPC for the worker end-to-end tests (``emit`` itself is Python-only).

        Any event with any data is exactly what ``emit`` keeps away from RPC, so even in
        this fixture addon (never installed by ``make run``) it answers only on a test
        stack (``QSB_TEST_FIXTURES=1`` in the server's environment) and to administrators:
        a database where the addon got installed by mistake exposes nothing callable.
        """
        check_test_stack(self.env)
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
