"""Observers of the test records; each one logs what it did in quicksol.test.log."""

from odoo import api, models
from odoo.exceptions import ValidationError


def _log(env, observer, event_name, data, batch_size=1):
    # sudo - quicksol.test.log: observers log for any user in the tests.
    env["quicksol.test.log"].sudo().create(
        {
            "observer": observer,
            "event_name": event_name,
            "res_ids": ",".join(map(str, data.get("res_ids") or [])),
            "uid": env.uid,
            "lang": env.context.get("lang") or "",
            "batch_size": batch_size,
            "event_uuid": env.context.get("quicksol_event_uuid") or False,
        }
    )


class InlineObserver(models.AbstractModel):
    _name = "quicksol.test.observer.inline"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: inline"
    _observe_events = ["testrec.created", "testrec.updated", "testrec.deleted"]
    _sequence = 5

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class AsyncObserver(models.AbstractModel):
    _name = "quicksol.test.observer.async"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: async on the audit queue"
    _observe_events = ["testrec.created", "testrec.custom"]
    _async_capable = True

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class CommissionQueueObserver(models.AbstractModel):
    _name = "quicksol.test.observer.commission"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: async on the commission queue"
    _observe_events = ["testrec.custom"]
    _async_capable = True
    _async_queue = "commission_events"
    _sequence = 20

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class BeforeCreateObserver(models.AbstractModel):
    """Vetoes a forbidden name, upper-cases names asked to, even if declared async."""

    _name = "quicksol.test.observer.before"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: before-create veto"
    _observe_events = ["testrec.before_create", "testrec.before_write"]
    _async_capable = True  # must not matter: before-events always run inline

    @api.model
    def handle(self, event_name, data):
        vals = data["vals"]
        if vals.get("name") == "forbidden":
            raise ValidationError(self.env._("The name 'forbidden' is vetoed."))
        if vals.get("name") == "shout":
            vals["name"] = "SHOUT"


# Events whose serialization failure was raised already, in this server process.
_CONFLICTED = set()


class FlakyObserver(models.AbstractModel):
    """Fails the way the event data asks: 'transient' or 'permanent'."""

    _name = "quicksol.test.observer.flaky"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: fails on request"
    _observe_events = ["testrec.flaky"]
    _async_capable = True
    _async_queue = "notification_events"

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)
        if data.get("fail") == "permanent":
            raise ValidationError(self.env._("permanent failure asked by the test"))
        if data.get("fail") == "transient":
            raise ConnectionError("transient failure asked by the test")
        if (
            data.get("fail") == "serialization"
            and self.env.context.get("quicksol_event_uuid") not in _CONFLICTED
        ):
            # A real serialization failure from PostgreSQL (SQLSTATE 40001), once per event: as
            # if a concurrent transaction had changed the same rows.
            _CONFLICTED.add(self.env.context.get("quicksol_event_uuid"))
            self.env.cr.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'conflict asked by the test' USING ERRCODE = '40001'; END $$"
            )


class BatchObserver(models.AbstractModel):
    _name = "quicksol.test.observer.batch"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: batch-capable"
    _observe_events = ["testrec.batched"]
    _async_capable = True
    _async_batch = True

    @api.model
    def handle(self, event_name, data):
        if data.get("fail"):
            raise ValidationError(self.env._("bad item in batch"))
        _log(self.env, self._name, event_name, data)

    @api.model
    def handle_async_batch(self, events):
        if any(data.get("fail") for _name, data in events):
            raise ValidationError(self.env._("bad item in batch"))
        for event_name, data in events:
            _log(self.env, self._name, event_name, data, batch_size=len(events))


class BenchInlineObserver(models.AbstractModel):
    """Does the least an inline observer does: look at the ids."""

    _name = "quicksol.bench.observer.inline"
    _inherit = "quicksol.abstract.observer"
    _description = "Benchmark observer: inline"
    _observe_events = ["benchrec.created"]

    @api.model
    def handle(self, event_name, data):
        return len(data["res_ids"])


class BenchAsyncObserver(models.AbstractModel):
    _name = "quicksol.bench.observer.async"
    _inherit = "quicksol.abstract.observer"
    _description = "Benchmark observer: async"
    _observe_events = ["benchrec.created"]
    _async_capable = True
    _async_batch = True

    @api.model
    def handle(self, event_name, data):
        return len(data["res_ids"])
