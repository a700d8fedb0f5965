from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import BusCase

ASYNC = "quicksol.test.observer.async"
FLAKY = "quicksol.test.observer.flaky"
BATCH = "quicksol.test.observer.batch"


@tagged("post_install", "-at_install")
class TestRunAsync(BusCase):
    def emit(self, name, data, user=None, **context):
        with self.async_mode():
            bus = self.Bus.with_user(user) if user else self.Bus
            return bus.with_context(**context).emit(name, data)

    def as_worker(self):
        return self.Event.with_user(self.worker)

    def delivery(self, event_uuid, observer):
        return self.env["quicksol.event.delivery"].search(
            [("event_id.uuid", "=", event_uuid), ("observer", "=", observer)]
        )

    def test_runs_once_and_a_second_call_does_nothing(self):
        event_uuid = self.emit("testrec.custom", {"res_ids": [3]})
        first = self.as_worker().run_async(event_uuid, ASYNC)
        second = self.as_worker().run_async(event_uuid, ASYNC)
        self.assertEqual(first["status"], "done")
        self.assertEqual(second["status"], "already_done")
        self.assertEqual(len(self.logs(ASYNC, "testrec.custom")), 1)
        self.assertEqual(self.logs(ASYNC).event_uuid, event_uuid)  # observers can name it
        delivery = self.delivery(event_uuid, ASYNC)
        self.assertEqual((delivery.state, delivery.attempts), ("done", 1))
        self.assertTrue(delivery.done_at)
        self.assertEqual(delivery.event_id.state, "pending")  # the other observer has not run

    def test_event_is_done_when_every_delivery_is(self):
        event_uuid = self.emit("testrec.custom", {})
        results = self.as_worker().run_async_batch(
            [[event_uuid, ASYNC], [event_uuid, "quicksol.test.observer.commission"]]
        )
        self.assertEqual([r["status"] for r in results], ["done", "done"])
        self.assertEqual(self.Event.search([("uuid", "=", event_uuid)]).state, "done")

    def test_runs_as_the_emitting_user_with_their_language(self):
        self.env["res.lang"]._activate_lang("pt_BR")
        self.user.lang = "pt_BR"
        event_uuid = self.emit("testrec.custom", {}, user=self.user, lang="pt_BR")
        self.as_worker().run_async(event_uuid, ASYNC)
        log = self.logs(ASYNC)
        self.assertEqual((log.uid, log.lang), (self.user.id, "pt_BR"))

    def test_permanent_error_fails_at_once_and_rolls_back_the_effect(self):
        event_uuid = self.emit("testrec.flaky", {"fail": "permanent"})
        result = self.as_worker().run_async(event_uuid, FLAKY)
        self.assertEqual(result["status"], "failed")
        self.assertTrue(result["permanent"])
        self.assertIn("permanent failure asked by the test", result["error"])
        self.assertFalse(self.logs(FLAKY), "the failed run's writes must be rolled back")
        delivery = self.delivery(event_uuid, FLAKY)
        self.assertEqual((delivery.state, delivery.attempts), ("failed", 1))
        self.assertEqual(delivery.event_id.state, "failed")
        self.assertIn("ValidationError", delivery.event_id.last_error)

    def test_transient_error_asks_for_a_retry(self):
        event_uuid = self.emit("testrec.flaky", {"fail": "transient"})
        result = self.as_worker().run_async(event_uuid, FLAKY)
        self.assertEqual(result["status"], "retry")
        self.assertFalse(result["permanent"])
        delivery = self.delivery(event_uuid, FLAKY)
        self.assertEqual((delivery.state, delivery.attempts), ("pending", 1))
        self.assertIn("ConnectionError", delivery.last_error)

    def test_unknown_pair(self):
        result = self.as_worker().run_async("00000000-0000-0000-0000-000000000000", ASYNC)
        self.assertEqual(result["status"], "unknown")

    def test_bad_items_are_refused_clearly(self):
        for items in ("x", [["only-one"]], [[1, 2]], [["a", ""]]):
            with self.subTest(items=items), self.assertRaisesRegex(UserError, "pair"):
                self.as_worker().run_async_batch(items)

    def test_only_the_worker_group_may_run(self):
        event_uuid = self.emit("testrec.custom", {})
        admin = self.env.ref("base.user_admin")
        for user in (self.user, admin):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.Event.with_user(user).run_async(event_uuid, ASYNC)
        with self.assertRaises(AccessError):
            self.Event.with_user(self.user).mark_dead(event_uuid, ASYNC, "x")
        with self.assertRaises(AccessError):
            self.Event.with_user(self.user).observer_info()
        self.assertFalse(self.logs(ASYNC))

    def test_mark_dead_is_idempotent_and_spares_done_work(self):
        event_uuid = self.emit("testrec.custom", {})
        self.assertTrue(self.as_worker().mark_dead(event_uuid, ASYNC, "retries exhausted"))
        self.assertTrue(self.as_worker().mark_dead(event_uuid, ASYNC, "retries exhausted"))
        delivery = self.delivery(event_uuid, ASYNC)
        self.assertEqual((delivery.state, delivery.last_error), ("dead", "retries exhausted"))
        self.assertEqual(self.as_worker().run_async(event_uuid, ASYNC)["status"], "failed")
        other = self.delivery(event_uuid, "quicksol.test.observer.commission")
        self.as_worker().run_async(event_uuid, other.observer)
        self.as_worker().mark_dead(event_uuid, other.observer, "late")
        self.assertEqual(other.state, "done")

    def test_requeue_puts_failed_work_back_and_it_runs_once(self):
        event_uuid = self.emit("testrec.flaky", {"fail": "permanent"})
        self.as_worker().run_async(event_uuid, FLAKY)
        event = self.Event.search([("uuid", "=", event_uuid)])
        with self.async_mode():
            event.with_user(self.env.ref("base.user_admin")).action_requeue()
        delivery = self.delivery(event_uuid, FLAKY)
        self.assertEqual((delivery.state, delivery.publish_attempt), ("pending", 2))
        with self.assertRaises(AccessError):
            event.with_user(self.user).action_requeue()
        with self.assertRaisesRegex(UserError, "Only failed or dead"):
            event.action_requeue()

    def test_run_now_button_runs_pending_work_inline(self):
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        event.with_user(self.env.ref("base.user_admin")).action_run_inline()
        self.assertEqual(event.state, "done")
        self.assertEqual(set(event.delivery_ids.mapped("run_mode")), {"inline_admin"})
        self.assertEqual(len(self.logs(event_name="testrec.custom")), 2)

    def test_batch_capable_observer_gets_one_call(self):
        uuids = [self.emit("testrec.batched", {"res_ids": [i]}) for i in range(5)]
        results = self.as_worker().run_async_batch([[u, BATCH] for u in uuids])
        self.assertEqual({r["status"] for r in results}, {"done"})
        self.assertEqual(self.logs(BATCH).mapped("batch_size"), [5] * 5)

    def test_a_bad_item_in_a_batch_fails_alone(self):
        uuids = [self.emit("testrec.batched", {"fail": i == 2}) for i in range(4)]
        results = self.as_worker().run_async_batch([[u, BATCH] for u in uuids])
        self.assertEqual([r["status"] for r in results], ["done", "done", "failed", "done"])
        self.assertEqual(len(self.logs(BATCH)), 3)

    def test_a_stale_dead_letter_does_not_bury_requeued_work(self):
        event_uuid = self.emit("testrec.flaky", {"fail": "permanent"})
        self.as_worker().run_async(event_uuid, FLAKY)
        with self.async_mode():
            self.Event.search([("uuid", "=", event_uuid)]).action_requeue()
        delivery = self.delivery(event_uuid, FLAKY)
        self.assertEqual(delivery.publish_attempt, 2)
        self.assertFalse(self.as_worker().mark_dead(event_uuid, FLAKY, "late letter", 1))
        self.assertEqual(delivery.state, "pending")
        self.assertTrue(self.as_worker().mark_dead(event_uuid, FLAKY, "exhausted", 2))
        self.assertEqual((delivery.state, delivery.last_error), ("dead", "exhausted"))

    def test_coalescing_needs_a_live_first_event_and_fails_with_it(self):
        first = self.emit("testrec.flaky", {"fail": "permanent"})
        duplicate = self.emit("testrec.flaky", {"fail": "permanent"})
        worker = self.as_worker()
        self.assertFalse(worker.mark_coalesced(duplicate, FLAKY, "no-such-event"))
        self.assertFalse(worker.mark_coalesced(duplicate, FLAKY, duplicate))
        self.assertTrue(worker.mark_coalesced(duplicate, FLAKY, first))
        self.assertEqual(worker.run_async(first, FLAKY)["status"], "failed")
        dup = self.delivery(duplicate, FLAKY)
        self.assertEqual((dup.state, dup.run_mode), ("failed", "async"))
        self.assertIn(f"coalesced into {first}, which failed", dup.last_error)
        third = self.emit("testrec.flaky", {"fail": "permanent"})
        self.assertFalse(worker.mark_coalesced(third, FLAKY, first), "first already failed")

    def test_an_event_whose_user_is_gone_fails_clearly(self):
        event_uuid = self.emit("testrec.custom", {})
        self.env.cr.flush()  # the outbox rows are written at precommit: before raw SQL
        self.env.cr.execute("UPDATE quicksol_event SET user_id = NULL WHERE uuid = %s", [event_uuid])
        self.env.invalidate_all()
        result = self.as_worker().run_async(event_uuid, ASYNC)
        self.assertEqual((result["status"], result["permanent"]), ("failed", True))
        self.assertIn("no longer exists", result["error"])
        self.assertFalse(self.logs(ASYNC))

    def test_unfinished_events_cannot_be_deleted(self):
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        admin = self.env.ref("base.user_admin")
        with self.assertRaisesRegex(UserError, "would be lost"):
            event.with_user(admin).unlink()
        with self.assertRaisesRegex(UserError, "would be lost"):
            event.delivery_ids.with_user(admin).unlink()
        self.as_worker().run_async_batch(
            [[event_uuid, ASYNC], [event_uuid, "quicksol.test.observer.commission"]]
        )
        event.with_user(admin).unlink()
        self.assertFalse(event.exists())

    def test_the_internal_context_key_cannot_be_forged(self):
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        admin = self.env.ref("base.user_admin")
        forged = {"quicksol_event_bus_internal": True}
        with self.assertRaises(AccessError):
            event.delivery_ids.with_user(admin).sudo().with_context(**forged).write({"state": "done"})
        with self.assertRaises(AccessError):
            event.sudo().with_context(**forged).write({"payload": {}})

    def test_mark_coalesced_counts_as_done_without_running(self):
        first = self.emit("testrec.custom", {"same": 1})
        duplicate = self.emit("testrec.custom", {"same": 1})
        self.assertTrue(self.as_worker().mark_coalesced(duplicate, ASYNC, first))
        self.assertFalse(self.as_worker().mark_coalesced(duplicate, ASYNC, first))
        delivery = self.delivery(duplicate, ASYNC)
        self.assertEqual(
            (delivery.state, delivery.run_mode, delivery.coalesced_into), ("done", "coalesced", first)
        )
        self.assertEqual(self.as_worker().run_async(duplicate, ASYNC)["status"], "already_done")
        self.assertFalse(self.logs(ASYNC))
        with self.assertRaises(AccessError):
            self.Event.with_user(self.user).mark_coalesced(duplicate, ASYNC, first)

    def test_observer_info_for_workers(self):
        info = self.as_worker().observer_info()
        self.assertIs(info[ASYNC]["rate_limit"], False)  # XML-RPC cannot carry None
        self.assertEqual(info[BATCH]["async_batch"], True)
        self.assertEqual(info[FLAKY]["queue"], "notification_events")
        self.assertEqual(info[ASYNC]["debounce_seconds"], 0)

    def test_events_and_deliveries_cannot_be_forged_or_edited(self):
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        admin = self.env.ref("base.user_admin")
        with self.assertRaises(AccessError):
            event.with_user(admin).write({"payload": {"evil": True}})
        with self.assertRaises(AccessError):
            event.delivery_ids.with_user(admin).write({"state": "done"})
        with self.assertRaises(AccessError):
            self.Event.with_user(admin).create({"uuid": "x", "name": "a.b"})
        with self.assertRaises(AccessError):
            event.with_user(self.worker).sudo(False).write({"payload": {}})

    def test_purge_done_keeps_recent_and_unfinished_events(self):
        done_uuid = self.emit("testrec.custom", {})
        self.as_worker().run_async_batch(
            [[done_uuid, ASYNC], [done_uuid, "quicksol.test.observer.commission"]]
        )
        pending_uuid = self.emit("testrec.custom", {})
        self.env.cr.execute("UPDATE quicksol_event SET create_date = now() - interval '40 days'")
        self.assertEqual(self.Event.sudo().purge_done(), 1)
        self.assertFalse(self.Event.search([("uuid", "=", done_uuid)]))
        self.assertTrue(self.Event.search([("uuid", "=", pending_uuid)]))
        self.assertEqual(self.Event.sudo().purge_done(days=0), 0)

    # ------------------------------------------------------------------ issue 7 regressions

    def test_an_event_with_a_failed_and_a_queued_delivery_cannot_be_deleted(self):
        # Its summary state is "failed", but its commission delivery has still to run.
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        self.delivery(event_uuid, ASYNC)._transition({"state": "failed", "last_error": "test"})
        self.delivery(event_uuid, "quicksol.test.observer.commission")._transition({"state": "queued"})
        self.assertEqual(event.state, "failed")
        with self.assertRaisesRegex(UserError, "would be lost"):
            event.with_user(self.env.ref("base.user_admin")).unlink()
        self.assertTrue(event.exists())

    def test_coalescing_into_a_first_event_that_already_ran_is_refused(self):
        # A -> B -> A: the second A is identical to the first, but B ran in between, so the
        # second A must run too (coalescing it into the first would lose it).
        first_a = self.emit("testrec.custom", {"value": "A"})
        self.as_worker().run_async(first_a, ASYNC)
        second_a = self.emit("testrec.custom", {"value": "A"})
        self.assertFalse(self.as_worker().mark_coalesced(second_a, ASYNC, first_a))
        self.assertEqual(self.as_worker().run_async(second_a, ASYNC)["status"], "done")
        self.assertEqual(len(self.logs(ASYNC, "testrec.custom")), 2)

    def test_a_serialization_failure_is_left_to_odoo_s_request_retry(self):
        # Recorded as an observer error, it would burn the worker's retries (three, then
        # dead); raised, Odoo's retrying() runs the whole request again.
        from psycopg2.errors import SerializationFailure

        event_uuid = self.emit("testrec.flaky", {"fail": "serialization"})
        with self.assertRaises(SerializationFailure):
            self.as_worker().run_async(event_uuid, FLAKY)
        delivery = self.delivery(event_uuid, FLAKY)
        self.assertEqual((delivery.state, delivery.attempts, delivery.last_error), ("pending", 0, False))
        # The retry (the same call again, as Odoo's retrying() does) runs it once.
        self.assertEqual(self.as_worker().run_async(event_uuid, FLAKY)["status"], "done")

    def test_event_states_follow_every_transition(self):
        event_uuid = self.emit("testrec.custom", {})
        event = self.Event.search([("uuid", "=", event_uuid)])
        commission = self.delivery(event_uuid, "quicksol.test.observer.commission")
        self.assertEqual(event.state, "pending")
        self.as_worker().run_async(event_uuid, ASYNC)
        self.assertEqual(event.state, "pending")  # the commission delivery is still pending
        commission._transition({"state": "queued"})
        self.assertEqual(event.state, "queued")
        self.as_worker().mark_dead(event_uuid, "quicksol.test.observer.commission", "gave up", 1)
        self.assertEqual(event.state, "dead")
        commission.action_requeue()
        self.assertEqual((event.state, commission.publish_attempt), ("pending", 2))
        self.as_worker().run_async(event_uuid, "quicksol.test.observer.commission")
        self.assertEqual(event.state, "done")

    def test_an_expired_message_is_published_again_then_parked_with_a_reason(self):
        event_uuid = self.emit("testrec.custom", {})
        delivery = self.delivery(event_uuid, ASYNC)
        delivery._transition({"state": "queued"})
        worker = self.as_worker()
        self.assertEqual(worker.mark_expired(event_uuid, ASYNC, 1), "republished")
        self.assertEqual(
            (delivery.state, delivery.publish_attempt, delivery.expired_count), ("pending", 2, 1)
        )
        self.assertIn("expired in audit_events", delivery.last_error)
        # A late copy of the first attempt's expiry (or dead letter) is stale: ignored.
        self.assertFalse(worker.mark_expired(event_uuid, ASYNC, 1))
        self.assertFalse(worker.mark_dead(event_uuid, ASYNC, "late dead letter", 1))
        self.assertEqual(delivery.state, "pending")
        for attempt in (2, 3):
            self.assertEqual(worker.mark_expired(event_uuid, ASYNC, attempt), "republished")
        self.assertEqual(worker.mark_expired(event_uuid, ASYNC, 4), "parked")
        self.assertEqual((delivery.state, delivery.event_id.state), ("dead", "dead"))
        self.assertIn("expired 4 times in audit_events", delivery.last_error)
        delivery.action_requeue()  # an administrator, once the workers run again
        self.assertEqual(worker.run_async(event_uuid, ASYNC)["status"], "done")
        with self.assertRaises(AccessError):
            self.Event.with_user(self.user).mark_expired(event_uuid, ASYNC, 5)
