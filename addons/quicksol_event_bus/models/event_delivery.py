"""``quicksol.event.delivery``: one event for one async observer — the unit of exactly-once."""

import logging
import time

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.modules.registry import Registry

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.errors import PublisherBusy, PublishError
from quicksol_bus.publisher import OutgoingMessage, get_publisher
from quicksol_bus.topology import QUEUES

_logger = logging.getLogger(__name__)

DELIVERY_STATES = [
    ("pending", "Pending"),  # in the outbox, not yet confirmed by the broker
    ("queued", "Queued"),  # confirmed by the broker, waiting for a worker
    ("done", "Done"),
    ("failed", "Failed"),  # the observer raised a permanent error
    ("dead", "Dead letter"),  # retries exhausted; the message is in <queue>.dead
]
# Errors an observer raises on purpose (veto, validation, rights): retrying cannot help.
PERMANENT_ERRORS = (UserError, AccessError)
INTERNAL_KEY = "quicksol_event_bus_internal"
# The value of INTERNAL_KEY with which the bus writes its own rows: an object, so an RPC
# caller cannot forge it through the context (as queue_job's EDIT_SENTINEL).
INTERNAL = object()


def is_internal(env):
    return env.context.get(INTERNAL_KEY) is INTERNAL


class QuicksolEventDelivery(models.Model):
    _name = "quicksol.event.delivery"
    _description = "Event Bus Delivery"
    _order = "id desc"
    _rec_name = "observer"

    event_id = fields.Many2one("quicksol.event", required=True, ondelete="cascade", index=True, readonly=True)
    event_uuid = fields.Char(related="event_id.uuid", string="Event UUID")
    event_name = fields.Char(related="event_id.name", string="Event Name")
    observer = fields.Char(required=True, readonly=True, index=True)
    queue = fields.Selection([(name, name) for name in QUEUES], required=True, readonly=True)
    priority = fields.Integer(readonly=True)
    state = fields.Selection(DELIVERY_STATES, required=True, default="pending", index=True, readonly=True)
    run_mode = fields.Selection(
        [
            ("async", "Worker"),
            ("inline_fallback", "Inline (broker down)"),
            ("inline_admin", "Inline (administrator)"),
            ("coalesced", "Coalesced into another event"),
        ],
        default="async",
        required=True,
        readonly=True,
    )
    coalesced_into = fields.Char(
        readonly=True, help="UUID of the identical event whose run stood for this one (dedup)."
    )
    publish_attempt = fields.Integer(
        default=1, readonly=True, help="Incremented by every requeue; travels in the message."
    )
    attempts = fields.Integer(default=0, readonly=True, help="Runs of the observer that ended.")
    last_error = fields.Text(readonly=True)
    published_at = fields.Datetime(readonly=True)
    done_at = fields.Datetime(readonly=True)
    duration_ms = fields.Float(string="Run time (ms)", readonly=True, digits=(16, 1))

    _sql_constraints = [
        (
            "event_observer_unique",
            "unique(event_id, observer)",
            "An event is delivered once to each observer.",
        ),
    ]

    # ------------------------------------------------------------------ protection

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal(self.env):
            raise AccessError(self.env._("Deliveries are created by the event bus only."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal(self.env):
            raise AccessError(self.env._("Deliveries cannot be edited; use the Requeue button."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_unfinished(self):
        if not is_internal(self.env) and any(d.state in ("pending", "queued") for d in self):
            raise UserError(
                self.env._(
                    "Pending or queued deliveries cannot be deleted: their "
                    "events would be lost. Let them finish, or fail."
                )
            )

    def _set(self, vals):
        return self.sudo().with_context(**{INTERNAL_KEY: INTERNAL}).write(vals)

    # ------------------------------------------------------------------ publishing

    @api.model
    def _publish_committed(self, dbname, ids):
        """Post-commit hook: publish this transaction's deliveries in a cursor of our own."""
        if not ids:
            return
        try:
            registry = Registry(dbname)
            # A claim publishes at most ``relay_batch`` rows: go on, one transaction per chunk
            # (its queued marks commit at once), until every row of this transaction is sent.
            # A chunk that publishes nothing (broker down) leaves the rest to the relay.
            while ids:
                with registry.cursor() as cr:
                    env = api.Environment(cr, self.env.uid, {})
                    size = env["quicksol.event.bus"]._settings()["relay_batch"]
                    chunk, ids = ids[:size], ids[size:]
                    if not env["quicksol.event.delivery"].sudo()._publish_pending(ids=chunk):
                        return
        except Exception:
            _logger.exception("publishing %d committed deliveries failed; the relay will retry", len(ids))

    @api.model
    def _publish_pending(self, ids=None, limit=None, min_age=None, probe=False, stale_after=None, queue=None):
        """Publish pending deliveries (all, or ``ids``) and mark them queued.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so the post-commit publisher and
        the relay never publish the same row at the same time. Returns how many were
        published; 0 when the broker is down (they stay pending) or not configured. An open
        circuit breaker skips the attempt, unless ``probe`` (the relay) asks to try anyway.
        With ``stale_after`` (seconds), deliveries *queued* that long ago are published again
        instead (a message lost outside the broker's care; a duplicate is harmless).
        """
        bus = self.env["quicksol.event.bus"]
        settings = bus._settings()
        if not settings["broker_url"]:
            return 0
        if not settings["signing_key"]:
            _logger.error("EVENT_BUS_SIGNING_KEY is not set: events stay pending until it is")
            return 0
        breaker = bus._breaker(settings)
        if breaker.state == "open" and breaker.seconds_until_probe() > 0 and not probe:
            return 0  # known down: this save pays nothing, the relay will publish
        rows = self._claim(ids, limit or settings["relay_batch"], min_age, stale_after, queue)
        if not rows or not (breaker.allow() or probe):
            return 0  # a probe is used only when there is something to publish
        messages = [_outgoing_message(row, self.env.cr.dbname, settings) for row in rows]
        # A save waits at most the connect timeout for the broker's confirms (ADR 0003); the
        # relay, in a cron, may wait longer.
        timeout = settings["connect_timeout"]
        publisher = get_publisher(settings["broker_url"], timeout, 5 * timeout if probe else timeout)
        try:
            publisher.publish_batch(messages, lock_timeout=None if probe else timeout)
        except PublisherBusy as error:
            breaker.release_probe()
            _logger.info("%d deliveries left to the relay: %s", len(rows), error)
            return 0
        except PublishError as error:
            breaker.record_failure()
            _logger.warning("broker down, %d deliveries stay pending for the relay: %s", len(rows), error)
            return 0
        except BaseException:
            breaker.release_probe()
            raise
        breaker.record_success()
        self._mark_queued([row["id"] for row in rows], {row["event_id"] for row in rows})
        return len(rows)

    @api.model
    def _claim(self, ids, limit, min_age, stale_after, queue=None):
        """Lock and read, in one query, what the messages of up to ``limit`` deliveries need."""
        self.env.flush_all()  # the claim is SQL: it must see this transaction's writes
        if stale_after:
            conditions = [
                "d.state = 'queued'",
                "d.published_at < now() at time zone 'utc' - %s::interval",
            ]
            params = [f"{float(stale_after)} seconds"]
        else:
            conditions, params = ["d.state = 'pending'"], []
            if min_age:
                conditions.append("d.create_date < now() at time zone 'utc' - %s::interval")
                params.append(f"{float(min_age)} seconds")
        conditions.append("d.run_mode = 'async'")
        if queue:
            conditions.append("d.queue = %s")
            params.append(queue)
        if ids is not None:
            conditions.append("d.id = ANY(%s)")
            params.append(list(ids))
        self.env.cr.execute(
            f"""SELECT d.id, d.event_id, d.observer, d.queue, d.priority, d.publish_attempt,
                       e.uuid, e.name, e.model, e.res_ids, e.payload, e.user_id,
                       e.company_id, e.context_snapshot, e.create_date
                  FROM quicksol_event_delivery d
                  JOIN quicksol_event e ON e.id = d.event_id
                 WHERE {" AND ".join(conditions)}
              ORDER BY d.priority DESC, d.id
                 LIMIT %s
            FOR UPDATE OF d SKIP LOCKED""",  # the conditions are this method's constants
            [*params, limit],
        )
        return self.env.cr.dictfetchall()

    @api.model
    def _mark_queued(self, delivery_ids, event_ids):
        """Mark published deliveries queued, and their events, in two statements.

        Thousands of rows a batch: the ORM's write plus the recompute of every event's state
        would cost more than the publish itself.
        """
        self.env.cr.execute(
            """UPDATE quicksol_event_delivery
                  SET state = 'queued', published_at = now() at time zone 'utc',
                      write_date = now() at time zone 'utc', write_uid = %s
                WHERE id = ANY(%s)""",
            [self.env.uid, delivery_ids],
        )
        # An event's state is its worst delivery's (quicksol.event._compute_state): only
        # events with no pending delivery left become queued.
        self.env.cr.execute(
            """UPDATE quicksol_event e SET state = 'queued'
                 FROM (SELECT event_id FROM quicksol_event_delivery
                        WHERE event_id = ANY(%s)
                     GROUP BY event_id
                       HAVING bool_and(state <> 'pending')) settled
                WHERE e.id = settled.event_id AND e.state = 'pending'""",
            [list(event_ids)],
        )
        self.browse(delivery_ids).invalidate_recordset(["state", "published_at"])
        self.env["quicksol.event"].browse(list(event_ids)).invalidate_recordset(["state"])

    @api.model
    def _relay_once(self):
        """Publish one batch of pending deliveries old enough to be orphans."""
        settings = self.env["quicksol.event.bus"]._settings()
        return self._publish_pending(min_age=settings["relay_min_age"], probe=True)

    @api.model
    def _cron_relay(self):
        """Publish what is still pending (crash after commit, broker down), in batches."""
        self.env.cr.execute(
            "SELECT count(*) FROM quicksol_event_delivery WHERE state = 'pending' AND run_mode = 'async'"
        )
        remaining = self.env.cr.fetchone()[0]
        done = 0
        while remaining > 0:
            published = self._relay_once()
            if not published:
                break
            done += published
            remaining = max(0, remaining - published)
            # Each confirmed batch is kept even if a later one fails (as queue_job's runner).
            self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        if done:
            _logger.info("relay published %d pending deliveries (%d left)", done, remaining)
        return done + self._cron_relay_stale()

    @api.model
    def _cron_relay_stale(self):
        """Publish again deliveries still queued longer than their queue's message TTL plus
        EVENT_BUS_REPUBLISH_QUEUED_AFTER: by then RabbitMQ no longer holds their message
        (consumed, or dead-lettered and reconciled), so it was lost on the worker side."""
        margin = self.env["quicksol.event.bus"]._settings()["republish_queued_after"]
        if not margin:
            return 0
        republished = 0
        for spec in QUEUES.values():
            stale_after = spec.message_ttl_ms / 1000 + margin
            count = self._publish_pending(stale_after=stale_after, probe=True, queue=spec.name)
            if count:
                _logger.warning(
                    "relay republished %d deliveries of %s queued for over %ss", count, spec.name, stale_after
                )
            republished += count
        return republished

    # ------------------------------------------------------------------ running

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
            if delivery.state == "done":
                results[delivery.id] = _result("already_done")
            elif delivery.state in ("failed", "dead") and run_mode == "async":
                # A stale message (e.g. redelivered after a dead letter): requeue to rerun.
                results[delivery.id] = _result("failed", delivery.last_error, permanent=True)
            elif delivery.observer not in self.env:
                delivery._set(
                    {
                        "state": "failed",
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
        except PERMANENT_ERRORS as error:
            self._set({"attempts": self.attempts + 1, "run_mode": run_mode})
            self._fail("failed", _error_text(error))
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
        self._set({"state": state, "last_error": error})
        for delivery in self:
            duplicates = self.search(
                [
                    ("coalesced_into", "=", delivery.event_id.uuid),
                    ("observer", "=", delivery.observer),
                    ("run_mode", "=", "coalesced"),
                ]
            )
            if duplicates:
                duplicates._set(
                    {
                        "state": state,
                        "run_mode": "async",
                        "last_error": f"coalesced into {delivery.event_id.uuid}, which failed: {error}",
                    }
                )

    def _mark_done(self, run_mode, duration_ms):
        """Mark done, and set the state of their events, in two statements.

        A worker's batch is hundreds of rows: the ORM's write plus the recompute of every
        event's state cost more than the observer itself (see ``_mark_queued``).
        """
        if not self:
            return
        # The SQL must see, and must not be overwritten by, this transaction's pending writes.
        self.flush_model()
        self.env["quicksol.event"].flush_model(["state"])
        self.env.cr.execute(
            """UPDATE quicksol_event_delivery
                  SET state = 'done', done_at = %s, last_error = NULL, duration_ms = %s,
                      run_mode = %s, attempts = COALESCE(attempts, 0) + 1,
                      write_date = now() at time zone 'utc', write_uid = %s
                WHERE id = ANY(%s)
            RETURNING event_id""",
            [fields.Datetime.now(), duration_ms, run_mode, self.env.uid, self.ids],
        )
        event_ids = list({row[0] for row in self.env.cr.fetchall()})
        self._set_event_states(event_ids)
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

    @api.model
    def _set_event_states(self, event_ids):
        """Store the state of ``event_ids`` from their deliveries' in SQL, as
        ``quicksol.event._compute_state`` would (the worst state first), and invalidate the
        cached fields that depend on the deliveries."""
        self.env.cr.execute(
            """UPDATE quicksol_event e SET state = worst.state
                 FROM (SELECT event_id,
                              CASE WHEN bool_or(state = 'dead') THEN 'dead'
                                   WHEN bool_or(state = 'failed') THEN 'failed'
                                   WHEN bool_or(state = 'pending') THEN 'pending'
                                   WHEN bool_or(state = 'queued') THEN 'queued'
                                   ELSE 'done' END AS state
                         FROM quicksol_event_delivery
                        WHERE event_id = ANY(%s)
                     GROUP BY event_id) worst
                WHERE e.id = worst.event_id AND e.state IS DISTINCT FROM worst.state""",
            [event_ids],
        )
        self.env["quicksol.event"].browse(event_ids).invalidate_recordset(
            ["state", "observers", "attempts", "last_error"]
        )

    # ------------------------------------------------------------------ admin actions

    def action_requeue(self):
        """Put the selected failed or dead deliveries back on their queue."""
        if not (self.env.su or self.env.user.has_group("quicksol_event_bus.group_event_bus_manager")):
            raise AccessError(self.env._("Only event bus administrators can requeue deliveries."))
        deliveries = self.sudo().filtered(lambda d: d.state in ("failed", "dead"))
        if not deliveries:
            raise UserError(self.env._("Only failed or dead-lettered deliveries can be requeued."))
        deliveries._requeue()
        return True

    def _requeue(self):
        for delivery in self:
            delivery._set(
                {"state": "pending", "publish_attempt": delivery.publish_attempt + 1, "run_mode": "async"}
            )
        self.env["quicksol.event.bus"]._publish_after_commit(self)

    def _run_inline_now(self):
        pairs = [(d.event_id.uuid, d.observer) for d in self]
        found = self._lock_pairs(pairs)
        results = self.browse(list(found.values()))._run_locked(run_mode="inline_admin")
        failures = [r["error"] for r in results.values() if r["status"] not in ("done", "already_done")]
        if failures:
            raise UserError(self.env._("Some deliveries failed:\n%s", "\n".join(failures[:5])))


def _outgoing_message(row, dbname, settings):
    """The signed message of one claimed delivery row (see ``_claim``)."""
    envelope = build_envelope(
        event_id=row["uuid"],
        event_name=row["name"],
        observer=row["observer"],
        queue=row["queue"],
        db=dbname,
        model=row["model"],
        res_ids=row["res_ids"] or [],
        payload=row["payload"] or {},
        uid=row["user_id"],
        company_id=row["company_id"],
        context=row["context_snapshot"] or {},
        emitted_at=row["create_date"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        attempt=row["publish_attempt"],
    )
    return OutgoingMessage(
        task_id=f"{row['uuid']}:{row['observer']}",
        envelope=sign_envelope(envelope, settings["signing_key"]),
        queue=row["queue"],
        priority=row["priority"],
    )


def _result(status, error=False, permanent=False):
    return {"status": status, "error": error or False, "permanent": permanent}


def _error_text(error):
    return f"{type(error).__name__}: {error}"[:10000]
