"""End to end: the estate flows on a real Odoo server with real worker processes.

The test's hands are XML-RPC clients (admin, and an estate owner logging in with a
password); Odoo runs in async mode (a real RabbitMQ), one Celery worker process per queue runs
the async observers by calling back into Odoo. Every wait is a condition with a deadline:
an event's state becoming ``done`` in Odoo, then rows are counted (exactly once).

1. user creation: inline company validation (own company accepted, foreign refused with
   nothing written) and the ``user.created`` audit row written once by the audit worker;
2. a 1,000-row CSV import through the import wizard: 1,000 audit rows once each, and the
   importer's e-mail queued once after the audit is complete (``property.import.audited``,
   emitted by the audit worker, runs the notifier: first try, no waiting);
3. commission split: one sale inline (lines exist when the save returns), a bulk sale on
   the commission worker (lines exactly once, written by one batched create), whose
   ``commission.lines.created`` event tells the agent once.
"""

import base64
import uuid
import xmlrpc.client
from collections import Counter
from types import SimpleNamespace

import pytest

from quicksol_bus.topology import QUEUES

pytestmark = [pytest.mark.integration]

AUDIT = "quicksol.observer.security.group.audit"
SPLIT = "quicksol.observer.commission.split"
IMPORT_NOTIFY = "quicksol.observer.property.import.notify"
COMMISSION_NOTIFY = "quicksol.observer.commission.notify"
IMPORT_ROWS = 1000
BULK_SOLD = 5
# Notification observers never wait for other queues (they observe the events the audit and
# commission observers emit when done); short retries only keep a transient error (Odoo busy
# with the 1,000-row import) well inside the deadlines.
WORKER_ENV = {
    "QSB_WORKER_MAX_RETRIES": "20",
    "QSB_WORKER_RETRY_BASE": "0.2",
    "QSB_WORKER_RETRY_CAP": "1",
    "QSB_WORKER_LOG_JSON": "0",
}


class Rpc:
    """XML-RPC as one user (admin, or the estate owner logging in with a password)."""

    def __init__(self, url, db, login, password):
        self.db, self.password = db, password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(db, login, password, {})
        assert self.uid, f"login {login} refused on {db}"
        self.object = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def call(self, model, method, *args, **kwargs):
        return self.object.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)


# ---------------------------------------------------------------------------------------
# Fixtures: one tenant pair, an owner who logs in, one worker process per queue
# ---------------------------------------------------------------------------------------


def _group_id(admin, xmlid):
    module, name = xmlid.split(".")
    rows = admin.call(
        "ir.model.data",
        "search_read",
        [("module", "=", module), ("name", "=", name)],
        fields=["res_id"],
        limit=1,
    )
    assert rows, f"no record {xmlid}"
    return rows[0]["res_id"]


@pytest.fixture(scope="module")
def estate(odoo_server):
    """Two estate companies, an owner (may manage users) and an agent of company A, their
    agents, all made by admin; ``owner`` is an XML-RPC client logged in as the owner."""
    admin = Rpc(odoo_server.url, odoo_server.db, "admin", "admin")
    tag = uuid.uuid4().hex[:6]
    company = {}
    for key, rate, share in (("a", 3.0, 30.0), ("b", 6.0, 40.0)):
        company[key] = admin.call(
            "real.estate.company",
            "create",
            {
                "name": f"Flows {key.upper()} {tag}",
                "code": f"F{key.upper()}{tag}",
                "commission_rate": rate,
                "prospector_share": share,
            },
        )
    groups = {
        name: _group_id(admin, xmlid)
        for name, xmlid in (
            ("user", "base.group_user"),
            ("owner", "quicksol_estate.group_real_estate_owner"),
            ("agent", "quicksol_estate.group_real_estate_agent"),
            # owners who manage users also have Access Rights and Contact Creation (CONFIGURE)
            ("erp_manager", "base.group_erp_manager"),
            ("partners", "base.group_partner_manager"),
        )
    }
    password = f"pw-{uuid.uuid4().hex}"

    def user(login, group_names):
        return admin.call(
            "res.users",
            "create",
            {
                "name": login,
                "login": login,
                "email": f"{login}@example.com",
                "password": password,
                "groups_id": [(6, 0, [groups[g] for g in group_names])],
                "estate_company_ids": [(6, 0, [company["a"]])],
            },
        )

    owner_login = f"flows_owner_{tag}"
    owner_id = user(owner_login, ("user", "owner", "erp_manager", "partners"))
    agent_user_id = user(f"flows_agent_{tag}", ("user", "agent"))
    agent_id = admin.call(
        "real.estate.agent",
        "create",
        {"name": f"Agent {tag}", "user_id": agent_user_id, "estate_company_id": company["a"]},
    )
    prospector_id = admin.call(
        "real.estate.agent", "create", {"name": f"Prospector {tag}", "estate_company_id": company["a"]}
    )
    return SimpleNamespace(
        tag=tag,
        admin=admin,
        company_a=company["a"],
        company_b=company["b"],
        owner=Rpc(odoo_server.url, odoo_server.db, owner_login, password),
        owner_id=owner_id,
        owner_email=f"{owner_login}@example.com",
        agent_id=agent_id,
        prospector_id=prospector_id,
        agent_name=f"Agent {tag}",
        agent_email=f"flows_agent_{tag}@example.com",
    )


@pytest.fixture(scope="module")
def estate_workers(module_worker, rabbitmq_admin):
    """One real worker process per queue, for the whole module (stopped at its end)."""
    for spec in QUEUES.values():
        for name in (spec.name, spec.dead_queue):
            try:
                rabbitmq_admin.purge(name)
            except AssertionError:  # the queue does not exist yet
                pass
    return {
        queue: module_worker(queue, env=WORKER_ENV)
        for queue in ("audit_events", "commission_events", "notification_events")
    }


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def last_event_id(admin):
    rows = admin.call("quicksol.event", "search_read", [], fields=["id"], order="id desc", limit=1)
    return rows[0]["id"] if rows else 0


def events_since(admin, since, name, res_ids=None):
    rows = admin.call(
        "quicksol.event",
        "search_read",
        [("id", ">", since), ("name", "=", name)],
        fields=["uuid", "state", "res_ids", "last_error"],
        order="id",
    )
    if res_ids is not None:
        rows = [row for row in rows if sorted(row["res_ids"] or []) == sorted(res_ids)]
    return rows


def wait_event_done(admin, wait_for, uuid_, timeout):
    """Wait until the event's state is ``done`` (every delivery done); fail fast on failed/dead."""

    def done():
        rows = admin.call(
            "quicksol.event", "search_read", [("uuid", "=", uuid_)], fields=["state", "last_error"]
        )
        assert rows, f"event {uuid_} not found"
        assert rows[0]["state"] not in ("failed", "dead"), rows[0]
        return rows[0]["state"] == "done"

    wait_for(done, timeout=timeout, message=f"event {uuid_} never became done")


def deliveries(admin, uuid_, observer):
    return admin.call(
        "quicksol.event.delivery",
        "search_read",
        [("event_uuid", "=", uuid_), ("observer", "=", observer)],
        fields=["state", "attempts", "queue"],
    )


# ---------------------------------------------------------------------------------------
# 1. User creation: inline validation, async audit exactly once
# ---------------------------------------------------------------------------------------


def test_owner_creates_a_user_of_own_company_and_the_worker_audits_it_once(estate, estate_workers, wait_for):
    admin, tag = estate.admin, estate.tag
    since = last_event_id(admin)
    new_id = estate.owner.call(
        "res.users",
        "create",
        {
            "name": "Own company user",
            "login": f"flows_own_{tag}",
            "estate_company_ids": [(6, 0, [estate.company_a])],
        },
    )
    assert new_id
    [event] = events_since(admin, since, "user.created", [new_id])
    assert [d["queue"] for d in deliveries(admin, event["uuid"], AUDIT)] == ["audit_events"]
    wait_event_done(admin, wait_for, event["uuid"], timeout=60)
    rows = admin.call(
        "quicksol.audit.log",
        "search_read",
        [("event_name", "=", "user.created"), ("model", "=", "res.users"), ("res_id", "=", new_id)],
        fields=["user_id", "estate_company_ids"],
    )
    assert len(rows) == 1, rows
    assert rows[0]["user_id"][0] == estate.owner.uid  # the acting user, not the worker
    assert rows[0]["estate_company_ids"] == [estate.company_a]
    assert deliveries(admin, event["uuid"], AUDIT)[0]["attempts"] == 1


def test_owner_giving_a_foreign_company_gets_an_error_and_nothing_is_written(estate, estate_workers):
    admin, tag = estate.admin, estate.tag
    since = last_event_id(admin)
    login = f"flows_foreign_{tag}"
    with pytest.raises(xmlrpc.client.Fault) as error:
        estate.owner.call(
            "res.users",
            "create",
            {
                "name": f"Foreign company user {tag}",
                "login": login,
                "estate_company_ids": [(6, 0, [estate.company_b])],
            },
        )
    assert "multi-tenancy" in error.value.faultString
    assert (
        admin.call("res.users", "search_count", [("login", "=", login)], context={"active_test": False}) == 0
    )
    assert (
        admin.call(
            "res.partner",
            "search_count",
            [("name", "=", f"Foreign company user {tag}")],
            context={"active_test": False},
        )
        == 0
    )
    assert events_since(admin, since, "user.created") == []


# ---------------------------------------------------------------------------------------
# 2. Import of 1,000 properties through the wizard
# ---------------------------------------------------------------------------------------


def test_import_of_1000_properties_is_audited_once_each_and_the_importer_told_once(
    estate, estate_workers, wait_for
):
    admin, owner, tag = estate.admin, estate.owner, estate.tag
    lines = ["name;estate_company;agent;sale_price;state"]
    lines += [
        f"Imported {tag} {i};FA{tag};{estate.agent_name};{100000 + i},00;available"
        for i in range(IMPORT_ROWS)
    ]
    content = base64.b64encode("\n".join(lines).encode()).decode()
    since = last_event_id(admin)
    wizard_id = owner.call(
        "quicksol.property.import.wizard", "create", {"file": content, "filename": f"flows-{tag}.csv"}
    )
    owner.call("quicksol.property.import.wizard", "action_import", [wizard_id])
    [wizard] = owner.call(
        "quicksol.property.import.wizard",
        "read",
        [wizard_id],
        fields=["state", "created_count", "error_report", "event_uuid", "property_ids"],
    )
    assert wizard["state"] == "done", wizard["error_report"]
    assert wizard["created_count"] == IMPORT_ROWS
    property_ids = wizard["property_ids"]
    assert len(property_ids) == IMPORT_ROWS
    # One create() of 1,000 records: one property.created event, one audit delivery.
    [created] = events_since(admin, since, "property.created", property_ids)
    wait_event_done(admin, wait_for, created["uuid"], timeout=90)
    wait_event_done(admin, wait_for, wizard["event_uuid"], timeout=60)
    # The audit run that wrote the rows emitted the notifier's event in its transaction.
    [audited] = events_since(admin, since, "property.import.audited")
    wait_event_done(admin, wait_for, audited["uuid"], timeout=60)

    rows = admin.call(
        "quicksol.audit.log",
        "search_read",
        [
            ("event_name", "=", "property.created"),
            ("model", "=", "real.estate.property"),
            ("res_id", "in", property_ids),
        ],
        fields=["res_id", "user_id"],
    )
    per_record = Counter(row["res_id"] for row in rows)
    assert set(per_record) == set(property_ids)
    assert set(per_record.values()) == {1}, "some property was audited more than once"
    assert {row["user_id"][0] for row in rows} == {owner.uid}
    assert deliveries(admin, created["uuid"], AUDIT)[0]["attempts"] == 1
    mails = admin.call(
        "mail.mail",
        "search_read",
        [("subject", "=", "Property import processed"), ("email_to", "ilike", estate.owner_email)],
        fields=["body_html"],
    )
    assert len(mails) == 1, mails
    assert f"{IMPORT_ROWS} properties imported" in mails[0]["body_html"]
    assert deliveries(admin, audited["uuid"], IMPORT_NOTIFY)[0]["attempts"] == 1, "no retry loop"


# ---------------------------------------------------------------------------------------
# 3. Commission split: one sale inline, a bulk sale on the commission worker
# ---------------------------------------------------------------------------------------


def _new_properties(estate, count, label):
    return estate.owner.call(
        "real.estate.property",
        "create",
        [
            {
                "name": f"{label} {estate.tag} {i}",
                "estate_company_id": estate.company_a,
                "agent_id": estate.agent_id,
                "prospector_id": estate.prospector_id,
                "sale_price": 500000.0 + i,
                "state": "available",
            }
            for i in range(count)
        ],
    )


def _commission_mails(estate, label):
    """The agent's "commissions are ready" e-mails about the properties named ``label``."""
    return estate.admin.call(
        "mail.mail",
        "search_read",
        [
            ("subject", "=", "Your commissions are ready"),
            ("email_to", "ilike", estate.agent_email),
            ("body_html", "ilike", f"{label} {estate.tag}"),
        ],
        fields=["body_html"],
    )


def test_single_sale_splits_the_commission_inline(estate, estate_workers):
    admin = estate.admin
    [property_id] = _new_properties(estate, 1, "Single sale")
    since = last_event_id(admin)
    estate.owner.call("real.estate.property", "write", [property_id], {"state": "sold"})
    # No wait: the lines were written in the save's own transaction.
    lines = admin.call(
        "real.estate.commission.transaction",
        "search_read",
        [("property_id", "=", property_id)],
        fields=["type", "agent_id", "amount"],
    )
    assert sorted(line["type"] for line in lines) == ["agent", "prospector"]
    assert round(sum(line["amount"] for line in lines), 2) == round(500000.0 * 0.03, 2)
    assert events_since(admin, since, "commission.split.calculated") == []  # nothing async
    # The agent was told in the same save (the lines' announcement ran inline too).
    assert events_since(admin, since, "commission.lines.created") == []
    assert len(_commission_mails(estate, "Single sale")) == 1


def test_bulk_sale_splits_on_the_worker_once_with_one_batched_create(estate, estate_workers, wait_for):
    admin = estate.admin
    property_ids = _new_properties(estate, BULK_SOLD, "Bulk sale")
    since = last_event_id(admin)
    estate.owner.call("real.estate.property", "write", property_ids, {"state": "sold"})
    [event] = events_since(admin, since, "commission.split.calculated")
    assert sorted(event["res_ids"]) == sorted(property_ids)
    assert [d["queue"] for d in deliveries(admin, event["uuid"], SPLIT)] == ["commission_events"]
    wait_event_done(admin, wait_for, event["uuid"], timeout=60)

    lines = admin.call(
        "real.estate.commission.transaction",
        "search_read",
        [("property_id", "in", property_ids)],
        fields=["property_id", "type", "create_date", "create_uid"],
        order="id",
    )
    assert Counter((line["property_id"][0], line["type"]) for line in lines) == Counter(
        {(pid, kind): 1 for pid in property_ids for kind in ("agent", "prospector")}
    )
    assert deliveries(admin, event["uuid"], SPLIT)[0]["attempts"] == 1
    # One batched create(): one INSERT of all the lines, in one transaction (same
    # create_date) with consecutive ids. (The unit test test_commission_split counts the
    # create() calls with a spy; here we only see its footprint across the process boundary.)
    ids = [line["id"] for line in lines]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert len({line["create_date"] for line in lines}) == 1
    # The commission worker announced the lines in the same transaction; the notification
    # worker tells the agent once, at its first try.
    [announced] = events_since(admin, since, "commission.lines.created")
    assert sorted(announced["res_ids"]) == sorted(ids)
    wait_event_done(admin, wait_for, announced["uuid"], timeout=60)
    assert deliveries(admin, announced["uuid"], COMMISSION_NOTIFY)[0]["attempts"] == 1
    mails = _commission_mails(estate, "Bulk sale")
    assert len(mails) == 1, mails
    assert f"{BULK_SOLD} commission line(s)" in mails[0]["body_html"]
