"""The outbox writer: a transaction's events and deliveries, written at precommit in one go.

What is it?
    The emit side of the outbox. ``emit`` routes an event and hands its row to this writer;
    the rows of the whole transaction are inserted just before it commits, with one SQL
    statement per thousand events, and the pending deliveries are handed to the publisher
    (after commit). A save that emits a thousand events pays one round trip, not a thousand.
How does it work?
    Rows are buffered in ``cr.precommit.data`` and written by a precommit callback, as Odoo's
    own ``bus`` buffers its notifications. Odoo runs the precommit callbacks when the
    transaction commits and when a savepoint opens or is released, and drops them when a
    savepoint rolls back: an event emitted inside a savepoint that rolls back (an observer
    that failed) is dropped with it, exactly as its rows would have been.
Caveats:
    Anything that reads the outbox in the same transaction sees the buffered rows: reading
    ``quicksol.event`` or ``quicksol.event.delivery`` through the ORM (search, read, browse)
    flushes these models, which writes the buffer first. Raw SQL on those tables must call
    ``env.cr.flush()`` (or ``flush_model()``) first, as for any ORM write. A savepoint opened
    with ``flush=False`` neither writes nor drops the buffer: an event emitted inside one that
    rolls back is still written (Odoo's own ``flush=False`` savepoints are module loading and a
    few accounting checks, none of which emits).
"""

import json
import uuid
from dataclasses import dataclass

from odoo import api, models

from quicksol_bus.states import DONE, PENDING, worst_state

# cr.precommit.data key of the transaction's buffered OutboxRow list.
OUTBOX_BUFFER = "quicksol_event_bus.outbox_rows"
# Events per INSERT: 11 parameters an event and 7 a delivery keep a chunk of 1,000 events with a
# few observers each far below PostgreSQL's 65,535 parameters per statement.
CHUNK = 1000


@dataclass(frozen=True)
class OutboxRow:
    """One event and its deliveries, as they will be inserted."""

    uuid: str
    name: str
    model: str
    res_ids: str  # JSON
    payload: str  # JSON, as the bus's checks encoded it
    user_id: int
    company_id: int
    context_snapshot: str  # JSON
    deliveries: tuple  # (observer, queue, priority, state, run_mode, attempts) each

    @property
    def state(self):
        return worst_state(delivery[3] for delivery in self.deliveries)


class QuicksolEventOutboxWriter(models.Model):
    _inherit = "quicksol.event"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _outbox_row(self, event_name, data, encoded, deliveries):
        """The row of one event; ``deliveries`` is a list of ``(ObserverSpec, state, run_mode)``."""
        context = self.env.context
        res_ids = data.get("res_ids") or ([data["res_id"]] if data.get("res_id") else [])
        return OutboxRow(
            uuid=str(uuid.uuid4()),
            name=event_name,
            model=data.get("model") or None,
            res_ids=json.dumps(res_ids),
            payload=encoded.decode(),
            user_id=self.env.uid,
            company_id=self.env.company.id,
            context_snapshot=json.dumps(
                {key: context[key] for key in ("lang", "tz", "allowed_company_ids") if context.get(key)}
            ),
            deliveries=tuple(
                (spec.model, spec.queue, spec.effective_priority, state, run_mode, 1 if state == DONE else 0)
                for spec, state, run_mode in deliveries
            ),
        )

    @api.model
    def _buffer_outbox(self, row):
        """Write ``row`` when the transaction commits (see the module docstring)."""
        cr = self.env.cr
        rows = cr.precommit.data.get(OUTBOX_BUFFER)
        if rows is None:
            rows = cr.precommit.data[OUTBOX_BUFFER] = []
            cr.precommit.add(self.sudo()._write_outbox_buffer)
        rows.append(row)

    @api.model
    def _write_outbox_buffer(self):
        """Insert the buffered rows now, and publish their pending deliveries after commit."""
        rows = self.env.cr.precommit.data.pop(OUTBOX_BUFFER, None)
        if not rows:
            return
        pending = [
            delivery_id for _event, delivery_id, state in self._insert_outbox_rows(rows) if state == PENDING
        ]
        if pending:
            self.env["quicksol.event.bus"]._publish_after_commit(
                self.env["quicksol.event.delivery"].browse(pending)
            )

    @api.model
    def _insert_outbox_rows(self, rows):
        """Insert events and their deliveries; return ``(event id, delivery id, state)`` rows.

        The hot path of every emit routed async, so it skips the ORM's create (about 2 ms for
        the two records, ten times the SQL): the rows are new, nothing of them is cached.
        """
        inserted = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            events = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            deliveries = [(row.uuid, *delivery) for row in chunk for delivery in row.deliveries]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(deliveries))
            self.env.cr.execute(
                f"""WITH event AS (
                       INSERT INTO quicksol_event (uuid, name, state, model, res_ids, payload,
                                                   user_id, company_id, context_snapshot,
                                                   create_uid, write_uid, create_date, write_date)
                       SELECT e.uuid, e.name, e.state, e.model, e.res_ids::jsonb, e.payload::jsonb,
                              e.user_id, e.company_id, e.context::jsonb, e.user_id, e.user_id,
                              now() at time zone 'utc', now() at time zone 'utc'
                         FROM (VALUES {events}) AS e(uuid, name, state, model, res_ids, payload,
                                                     user_id, company_id, context)
                       RETURNING id, uuid, user_id)
                   INSERT INTO quicksol_event_delivery (event_id, observer, queue, priority, state,
                       run_mode, attempts, publish_attempt, create_uid, write_uid, create_date,
                       write_date, done_at)
                   SELECT event.id, v.observer, v.queue, v.priority, v.state, v.run_mode,
                          v.attempts, 1, event.user_id, event.user_id, now() at time zone 'utc',
                          now() at time zone 'utc',
                          CASE WHEN v.state = '{DONE}' THEN now() at time zone 'utc' END
                     FROM (VALUES {values}) AS v(uuid, observer, queue, priority, state, run_mode,
                                                 attempts)
                     JOIN event ON event.uuid = v.uuid
                RETURNING event_id, id, state""",
                [
                    *(
                        item
                        for row in chunk
                        for item in (
                            row.uuid,
                            row.name,
                            row.state,
                            row.model,
                            row.res_ids,
                            row.payload,
                            row.user_id,
                            row.company_id,
                            row.context_snapshot,
                        )
                    ),
                    *(item for delivery in deliveries for item in delivery),
                ],
            )
            inserted.extend(self.env.cr.fetchall())
        return inserted

    def flush_model(self, fnames=None):
        self._write_outbox_buffer()  # what is buffered is part of this model's pending writes
        return super().flush_model(fnames)


class QuicksolEventDeliveryOutboxWriter(models.Model):
    _inherit = "quicksol.event.delivery"  # pylint: disable=consider-merging-classes-inherited

    def flush_model(self, fnames=None):
        self.env["quicksol.event"]._write_outbox_buffer()
        return super().flush_model(fnames)
