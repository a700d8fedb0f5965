"""The delivery runner: lock a delivery, run its observer, record how it ended.

What is it?
    The half of the delivery lifecycle that moves a delivery from ``queued`` to ``done``,
    ``failed`` or ``dead``, for the workers' ``run_async``/``run_async_batch`` calls (and an
    administrator's inline run).
How does it work?
    Deliveries are locked (``FOR UPDATE``, one lock order for every caller), the observer runs
    in a savepoint as the event's user, and the done mark is written in the same transaction:
    a redelivered message finds the work done. Batch-capable observers run once for a group.
Caveats:
    A serialization failure, deadlock or lock timeout is not the observer's fault: it is
    raised out of the call so that Odoo's own request retry runs the whole transaction again,
    instead of being recorded as an observer error and burning the worker's retries.
"""

import logging
import time

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from quicksol_bus.states import DEAD, DONE, FAILED

_logger = logging.getLogger(__name__)

# Errors an observer raises on purpose (veto, validation, rights): retrying cannot help.
PERMANENT_ERRORS = (UserError, AccessError)


class QuicksolEventDeliveryRunner(models.Model):
    _inherit = "quicksol.event.delivery"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _lock_pairs(self, pairs):
        """Lock the deliveries of ``(event_uuid, observer)`` pairs; return pair -> id."""
        if not pairs:
            return {}
        self.flush_model(["state"])
        self.env.cr.execute(
            """SELECT d.id, e.uuid, d.observer
                 FROM quicksol_event_delivery d
                 JOIN quicksol_event e ON e.id = d.event_id
                WHERE e.uuid = ANY(%s) AND (e.uuid, d.observer) IN %s
             ORDER BY d.id
           FOR UPDATE OF d""",  # one lock order for every caller: no deadlocks
            # uuid = ANY() lets PostgreSQL use the uuid index; the pair test then filters
            # the few deliveries of those events.
            [list({uuid for uuid, _observer in pairs}), tuple(pairs)],
        )
        found = {(uuid, observer): delivery_id for delivery_id, uuid, observer in self.env.cr.fetchall()}
        self.browse(list(found.values())).invalidate_recordset()
        return found

    def _run_locked(self, run_mode="async"):
        """Run locked deliveries; return {delivery id: result dict}."""
        results = {}
        to_run = []
        for delivery in self:
            if delivery.state == DONE:
                results[delivery.id] = _result("already_done")
            elif delivery.state in (FAILED, DEAD) and run_mode == "async":
                # A stale message (e.g. redelivered after a dead letter): requeue to rerun.
                results[delivery.id] = _result("failed", delivery.last_error, permanent=True)
            elif delivery.observer not in self.env:
                delivery._transition(
                    {
                        "state": FAILED,
                        "attempts": delivery.attempts + 1,
                        "last_error": f"observer {delivery.observer} is not installed",
                    }
                )
                results[delivery.id] = _result("failed", delivery.last_error, permanent=True)
            else:
                to_run.append(delivery)
        groups = {}
        for delivery in to_run:
            groups.setdefault(delivery._run_key(), []).append(delivery.id)
        for (observer, _uid, _ctx), ids in groups.items():
            deliveries = self.browse(ids)
            batch = self.pool[observer]._async_batch and len(deliveries) > 1
            if batch and deliveries._run_group_in_one_call(run_mode, results):
                continue
            for delivery in deliveries:
                results[delivery.id] = delivery._run_one(run_mode)
        return results

    def _run_key(self):
        event = self.event_id
        context = tuple(sorted((k, str(v)) for k, v in (event.context_snapshot or {}).items()))
        return self.observer, event.user_id.id, context

    def _observer_env(self):
        """The observer as the event's user, with its context; a batch shares one user and
        context (see _run_key). ``quicksol_event_uuid`` names the event for one delivery."""
        event = self[:1].event_id
        if not event.user_id:
            # Running it as the worker's technical user would misattribute its effects.
            raise UserError(self.env._("The user who emitted this event no longer exists."))
        observer = self.env[self[:1].observer].with_user(event.user_id.id)
        context = dict(event.context_snapshot or {})
        if len(self) == 1:
            context["quicksol_event_uuid"] = event.uuid
        return observer.with_context(**context)

    def _run_group_in_one_call(self, run_mode, results):
        """Run a batch-capable observer once for the group; False lets items run one by one."""
        started = time.perf_counter()
        try:
            with self.env.cr.savepoint():
                self._observer_env().handle_async_batch(
                    [(d.event_id.name, d.event_id.payload or {}) for d in self]
                )
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # Odoo retries the whole request (see the module docstring)
        except Exception:  # noqa: BLE001 - isolate the failing item by running them one by one
            _logger.info(
                "batch of %d for %s failed; running items one by one",
                len(self),
                self[:1].observer,
                exc_info=True,
            )
            return False
        self._mark_done(run_mode, (time.perf_counter() - started) * 1000 / len(self))
        for delivery in self:
            results[delivery.id] = _result("done")
        return True

    def _run_one(self, run_mode):
        self.ensure_one()
        started = time.perf_counter()
        try:
            with self.env.cr.savepoint():
                self._observer_env().handle_async(self.event_id.name, self.event_id.payload or {})
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # Odoo retries the whole request (see the module docstring)
        except PERMANENT_ERRORS as error:
            self._set({"attempts": self.attempts + 1, "run_mode": run_mode})
            self._fail(FAILED, _error_text(error))
            return _result("failed", self.last_error, permanent=True)
        except Exception as error:  # noqa: BLE001 - any other error is worth a retry
            _logger.warning(
                "observer %s failed on event %s (will be retried): %s",
                self.observer,
                self.event_id.uuid,
                error,
                exc_info=True,
            )
            self._set({"attempts": self.attempts + 1, "last_error": _error_text(error)})
            return _result("retry", self.last_error)
        self._mark_done(run_mode, (time.perf_counter() - started) * 1000)
        return _result("done")

    def _fail(self, state, error):
        """Mark failed or dead, with the deliveries a worker coalesced into this one (they
        stood on its run, which will not happen): an administrator requeues them all."""
        duplicates = self.browse()
        for delivery in self:
            duplicates |= self.search(
                [
                    ("coalesced_into", "=", delivery.event_id.uuid),
                    ("observer", "=", delivery.observer),
                    ("run_mode", "=", "coalesced"),
                ]
            )
        self._set({"state": state, "last_error": error})
        for duplicate in duplicates:
            duplicate._set(
                {
                    "state": state,
                    "run_mode": "async",
                    "last_error": f"coalesced into {duplicate.coalesced_into}, which failed: {error}",
                }
            )
        self.env["quicksol.event"]._recompute_states((self | duplicates).event_id.ids)

    def _mark_coalesced_into(self, first):
        """Done without running: ``first`` (same observer, identical event) stands for it."""
        self._transition(
            {
                "state": DONE,
                "run_mode": "coalesced",
                "coalesced_into": first.event_id.uuid,
                "done_at": fields.Datetime.now(),
                "last_error": False,
            }
        )

    def _mark_done(self, run_mode, duration_ms):
        """Mark done in one statement, then recompute the events' states.

        A worker's batch is hundreds of rows: the ORM's write would cost more than the
        observer itself.
        """
        if not self:
            return
        # The SQL must see, and must not be overwritten by, this transaction's pending writes.
        self.flush_model()
        self.env.cr.execute(
            f"""UPDATE quicksol_event_delivery
                  SET state = '{DONE}', done_at = %s, last_error = NULL, duration_ms = %s,
                      run_mode = %s, attempts = COALESCE(attempts, 0) + 1,
                      write_date = now() at time zone 'utc', write_uid = %s
                WHERE id = ANY(%s)
            RETURNING event_id""",
            [fields.Datetime.now(), duration_ms, run_mode, self.env.uid, self.ids],
        )
        event_ids = list({row[0] for row in self.env.cr.fetchall()})
        self.invalidate_recordset(
            [
                "state",
                "done_at",
                "last_error",
                "duration_ms",
                "run_mode",
                "attempts",
                "write_date",
                "write_uid",
            ]
        )
        self.env["quicksol.event"]._recompute_states(event_ids)


def _result(status, error=False, permanent=False):
    return {"status": status, "error": error or False, "permanent": permanent}


def _error_text(error):
    return f"{type(error).__name__}: {error}"[:10000]
