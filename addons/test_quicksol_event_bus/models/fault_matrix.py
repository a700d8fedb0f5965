"""What the fault matrix (tests/faults) drives: a burst emitter, observers that record one
effect row per run, and the reconciliation query. Test fixture only: this addon is never
installed in production."""

import time

from odoo import api, fields, models
from odoo.exceptions import UserError

from .test_record import check_test_stack

FAULT_EVENT = "testrec.fault"
# Observed by two async observers on different queues (so on different worker processes).
FAULT_PAIR_EVENT = "testrec.fault_pair"
# Observed by one debounced, batch-capable observer (the notification queue).
FAULT_DEBOUNCED_EVENT = "testrec.fault_debounced"
FAULT_EVENTS = (FAULT_EVENT, FAULT_PAIR_EVENT, FAULT_DEBOUNCED_EVENT)


class _RolledBack(Exception):
    """Raised inside a savepoint to undo one emit."""


class QuicksolTestFaultEffect(models.Model):
    """One row per observer run: a committed event must have exactly one per observer."""

    _name = "quicksol.test.fault.effect"
    _description = "Event Bus Fault Matrix Effect"
    _order = "id"

    fault_case = fields.Char(required=True, index=True)
    token = fields.Char(required=True, index=True)
    event_uuid = fields.Char(index=True)
    observer = fields.Char(required=True)


class QuicksolTestFaultCounter(models.Model):
    """A row every observer run of a contended event updates (serialization failures)."""

    _name = "quicksol.test.fault.counter"
    _description = "Event Bus Fault Matrix Counter"

    fault_case = fields.Char(required=True, index=True)
    hits = fields.Integer(default=0)


def _record_effect(observer, event_name, data):
    env = observer.env
    if data.get("sleep_ms"):
        # Simulated work, so that a burst takes long enough for a fault to hit it mid-batch.
        time.sleep(float(data["sleep_ms"]) / 1000)
    if data.get("contended"):
        # Every run updates the same row: concurrent runs conflict (serialization failure).
        env.cr.execute(
            "UPDATE quicksol_test_fault_counter SET hits = hits + 1 WHERE fault_case = %s",
            [data["fault_case"]],
        )
    # sudo - quicksol.test.fault.effect: the observer runs as the emitting user.
    env["quicksol.test.fault.effect"].sudo().create(
        {
            "fault_case": data["fault_case"],
            "token": data["fault_marker"],
            "event_uuid": env.context.get("quicksol_event_uuid") or False,
            "observer": observer._name,
        }
    )


class FaultObserver(models.AbstractModel):
    _name = "quicksol.test.observer.fault"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: fault matrix, commission queue"
    _observe_events = [FAULT_EVENT, FAULT_PAIR_EVENT]
    _async_capable = True
    _async_queue = "commission_events"

    @api.model
    def handle(self, event_name, data):
        _record_effect(self, event_name, data)


class FaultAuditObserver(models.AbstractModel):
    _name = "quicksol.test.observer.fault_audit"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: fault matrix, audit queue"
    _observe_events = [FAULT_PAIR_EVENT]
    _async_capable = True
    _async_queue = "audit_events"

    @api.model
    def handle(self, event_name, data):
        _record_effect(self, event_name, data)


class FaultDebouncedObserver(models.AbstractModel):
    _name = "quicksol.test.observer.fault_debounced"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: fault matrix, debounced on the notification queue"
    _observe_events = [FAULT_DEBOUNCED_EVENT]
    _async_capable = True
    _async_queue = "notification_events"
    _async_batch = True
    _debounce_seconds = 1

    @api.model
    def handle(self, event_name, data):
        _record_effect(self, event_name, data)

    @api.model
    def handle_async_batch(self, events):
        for event_name, data in events:
            _record_effect(self, event_name, data)


class QuicksolTestFaultMatrix(models.AbstractModel):
    _name = "quicksol.test.fault.matrix"
    _description = "Event Bus Fault Matrix driver"

    @api.model
    def emit_burst(self, case, tokens, rollback_tokens=(), fail=False, event_name=FAULT_EVENT, extra=None):
        """Emit one event per token in this transaction; return {token: event uuid}.

        Each of ``rollback_tokens`` is emitted inside a savepoint that is rolled back (no
        event may remain). With ``fail`` the whole call raises after emitting: its
        transaction, with every event of it, is rolled back.
        """
        check_test_stack(self.env)
        if event_name not in FAULT_EVENTS:
            raise UserError(self.env._("The fault matrix emits testrec.fault events only."))
        bus = self.env["quicksol.event.bus"]
        extra = dict(extra or {})
        if extra.get("contended"):
            counter = self.env["quicksol.test.fault.counter"].sudo()
            if not counter.search_count([("fault_case", "=", case)]):
                counter.create({"fault_case": case})
        uuids = {}
        pending_rollback = list(rollback_tokens)
        for index, token in enumerate(tokens):
            uuids[token] = bus.emit(event_name, {**extra, "fault_case": case, "fault_marker": token})
            if pending_rollback and index % 10 == 0:
                self._emit_rolled_back(bus, event_name, case, pending_rollback.pop(), extra)
        for token in pending_rollback:
            self._emit_rolled_back(bus, event_name, case, token, extra)
        if fail:
            raise UserError(self.env._("The fault matrix rolls this burst back on purpose."))
        return uuids

    def _emit_rolled_back(self, bus, event_name, case, token, extra):
        try:
            with self.env.cr.savepoint():
                bus.emit(event_name, {**extra, "fault_case": case, "fault_marker": token})
                raise _RolledBack()
        except _RolledBack:
            return token  # the savepoint undid the event and its outbox rows
        return None

    @api.model
    def age_published(self, case, seconds):
        """Move the publish time of the case's queued deliveries ``seconds`` back: the TTL
        case's letters expired after 1 s (a test policy), Odoo believes an expiry only past
        the queue's own TTL."""
        check_test_stack(self.env)
        self.env.cr.execute(
            """UPDATE quicksol_event_delivery d SET published_at = d.published_at - %s::interval
                 FROM quicksol_event e
                WHERE e.id = d.event_id AND d.state = 'queued' AND e.payload->>'fault_case' = %s""",
            [f"{int(seconds)} seconds", case],
        )
        return self.env.cr.rowcount

    @api.model
    def progress(self, case):
        """Effects of ``case`` so far (a cheap poll while a fault is injected)."""
        check_test_stack(self.env)
        self.env.cr.execute("SELECT count(*) FROM quicksol_test_fault_effect WHERE fault_case = %s", [case])
        return self.env.cr.fetchone()[0]

    @api.model
    def unsettled(self, case):
        """[events of the case, of them not done, pending deliveries]: the cheap poll of a
        recovery (the relay only needs to run while deliveries are pending)."""
        check_test_stack(self.env)
        self.env.cr.execute(
            """SELECT count(DISTINCT e.id),
                      count(DISTINCT e.id) FILTER (WHERE e.state <> 'done'),
                      count(d.id) FILTER (WHERE d.state = 'pending')
                 FROM quicksol_event e JOIN quicksol_event_delivery d ON d.event_id = e.id
                WHERE e.name IN %s AND e.payload->>'fault_case' = %s""",
            [FAULT_EVENTS, case],
        )
        return list(self.env.cr.fetchone())

    @api.model
    def reconcile(self, case):
        """Everything the test needs to reconcile ``case``, read in one transaction.

        ``events``: [token, uuid, state] of every stored event of the case; ``effects``:
        [token, event uuid, observer, runs]; ``deliveries``: [token, observer, state,
        attempts]; ``counter``: the contended row's hits (or None).
        """
        check_test_stack(self.env)
        cr = self.env.cr
        cr.execute(
            """SELECT payload->>'fault_marker', uuid, state FROM quicksol_event
                WHERE name IN %s AND payload->>'fault_case' = %s""",
            [FAULT_EVENTS, case],
        )
        events = [list(row) for row in cr.fetchall()]
        cr.execute(
            # A batch run (debounce) has no event uuid in its context: its effect is the
            # event's that carries its token.
            """SELECT f.token, COALESCE(f.event_uuid, e.uuid), f.observer, count(*)
                 FROM quicksol_test_fault_effect f
            LEFT JOIN quicksol_event e
                   ON f.event_uuid IS NULL AND e.payload->>'fault_case' = f.fault_case
                  AND e.payload->>'fault_marker' = f.token
                WHERE f.fault_case = %s
             GROUP BY 1, 2, 3""",
            [case],
        )
        effects = [list(row) for row in cr.fetchall()]
        cr.execute(
            """SELECT e.payload->>'fault_marker', d.observer, d.state, d.attempts
                 FROM quicksol_event_delivery d JOIN quicksol_event e ON e.id = d.event_id
                WHERE e.name IN %s AND e.payload->>'fault_case' = %s""",
            [FAULT_EVENTS, case],
        )
        deliveries = [list(row) for row in cr.fetchall()]
        cr.execute("SELECT hits FROM quicksol_test_fault_counter WHERE fault_case = %s", [case])
        row = cr.fetchone()
        return {
            "events": events,
            "effects": effects,
            "deliveries": deliveries,
            "counter": row[0] if row else False,
        }
