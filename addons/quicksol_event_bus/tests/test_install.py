from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from quicksol_bus.topology import QUEUES


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_worker_user_belongs_only_to_the_worker_group(self):
        worker = self.env.ref("quicksol_event_bus.user_event_bus_worker")
        self.assertEqual(worker.groups_id, self.env.ref("quicksol_event_bus.group_event_bus_worker"))
        self.assertFalse(worker.has_group("base.group_user"))

    def test_admins_manage_the_bus(self):
        self.assertTrue(
            self.env.ref("base.user_admin").has_group("quicksol_event_bus.group_event_bus_manager")
        )

    def test_delivery_queues_are_the_topology(self):
        selection = dict(self.env["quicksol.event.delivery"]._fields["queue"].selection)
        self.assertEqual(set(selection), set(QUEUES))

    def test_only_admins_generate_worker_keys(self):
        key = (
            self.env["quicksol.event.bus"]
            .with_user(self.env.ref("base.user_admin"))
            .generate_worker_api_key()
        )
        self.assertEqual(len(key), 40)
        demo = self.env["res.users"].create({"name": "Plain", "login": "plain_user_x"})
        with self.assertRaises(AccessError):
            self.env["quicksol.event.bus"].with_user(demo).generate_worker_api_key()
