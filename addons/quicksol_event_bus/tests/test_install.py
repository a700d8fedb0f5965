from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from quicksol_bus.topology import QUEUES


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_worker_user_belongs_only_to_the_worker_group(self):
        worker = self.env.ref("quicksol_event_bus.user_event_bus_worker")
        self.assertEqual(worker.groups_id, self.env.ref("quicksol_event_bus.group_event_bus_worker"))
        self.assertFalse(worker.has_group("base.group_user"))

    def test_the_worker_user_reads_no_event_data(self):
        # Its API key runs observers through run_async and nothing else: no payload reading.
        worker = self.env.ref("quicksol_event_bus.user_event_bus_worker")
        for model in ("quicksol.event", "quicksol.event.delivery"):
            self.assertFalse(self.env[model].with_user(worker).has_access("read"), model)

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

    def test_brazilian_portuguese_translation_loads(self):
        self.env["res.lang"]._activate_lang("pt_BR")
        self.env["ir.module.module"]._load_module_terms(["quicksol_event_bus"], ["pt_BR"])
        menu = self.env.ref("quicksol_event_bus.menu_event_bus_root").with_context(lang="pt_BR")
        self.assertEqual(menu.name, "Barramento de eventos")
        field = self.env["ir.model.fields"]._get("quicksol.event.delivery", "state")
        self.assertEqual(field.with_context(lang="pt_BR").field_description, "Estado")
        states = dict(
            self.env["quicksol.event.delivery"]
            .with_context(lang="pt_BR")
            ._fields["state"]
            ._description_selection(self.env(context={"lang": "pt_BR"}))
        )
        self.assertEqual(states["dead"], "Mensagem morta")
