"""What an audit row keeps of an event: plain rules, no ``odoo`` import.

What is it?
    The SecurityGroupAudit observer writes one ``quicksol.audit.log`` row per record per
    event. This module decides what goes into each row's JSON ``data`` (never a password,
    never the whole id list of a 1,000-record batch), whether a ``user.updated`` event is a
    group change, and how to carry a long list of ids in a small event payload.

How to use it?
    >>> row_data("user.updated", {"model": "res.users", "res_ids": [7], "res_id": 7,
    ...          "vals": {"password": "s3cret", "in_group_12": True},
    ...          "changed": ["in_group_12", "password"]})["vals"]
    {'password': '***', 'in_group_12': True}
    >>> is_group_change(["name", "sel_groups_1_10_11"])
    True
    >>> id_ranges([5, 1, 2, 3, 9, 10])
    [[1, 3], [5, 5], [9, 10]]
    >>> ids_of_ranges([[1, 3], [9, 10]])
    [1, 2, 3, 9, 10]

Caveats
    Redaction is the bus's own, :func:`quicksol_bus.payload.redact_secrets` (one list of
    secret-looking key names for the outbox and the audit log, at any depth, masked as
    ``***``): a secret stored under an innocent name would be kept. The bus's own outbox
    keeps the event data as emitted; its retention
    (``quicksol_event_bus.done_retention_days``) applies there.
"""

from quicksol_bus.payload import redact_secrets

__all__ = [
    "GROUP_FIELDS",
    "is_group_change",
    "row_data",
    "id_ranges",
    "ids_of_ranges",
]

# res.users fields that change a user's groups: the real one and the reified ones the
# user form writes (in_group_<id> check boxes, sel_groups_<ids> selections).
GROUP_FIELDS = ("groups_id",)
GROUP_FIELD_PREFIXES = ("in_group_", "sel_groups_")
# Keys of the event data that are the same for every row of a batch and say nothing about
# the row's own record: they are not repeated in each row.
_BATCH_KEYS = ("res_ids",)


def is_group_change(changed):
    """Tell whether a ``changed`` list of field names touches a user's groups.

    >>> is_group_change(["groups_id"]), is_group_change(["login"]), is_group_change(None)
    (True, False, False)
    """
    return any(name in GROUP_FIELDS or name.startswith(GROUP_FIELD_PREFIXES) for name in changed or ())


def row_data(event_name, data, res_id=None, secret_keys=()):
    """The JSON-ready dict stored in one audit row for ``res_id`` of the event ``data``;
    ``secret_keys``: key words masked on top of the bus's pattern set.

    >>> row_data("property.created", {"model": "m", "res_ids": [1, 2], "ip_address": "::1"}, 2)
    {'event': 'property.created', 'model': 'm', 'ip_address': '::1', 'res_id': 2, 'batch_size': 2}
    """
    row = {"event": event_name}
    # LGPD: the log must not become a leak; secret-looking keys are masked at any depth.
    row.update(
        redact_secrets(
            {key: value for key, value in data.items() if key not in _BATCH_KEYS}, extra=secret_keys
        )
    )
    if res_id is not None:
        row["res_id"] = res_id
    if len(data.get("res_ids") or ()) > 1:
        row["batch_size"] = len(data["res_ids"])
    return row


def id_ranges(ids):
    """Compress ids into sorted ``[first, last]`` ranges (a batch create gives one range).

    >>> id_ranges([]), id_ranges([4])
    ([], [[4, 4]])
    """
    ranges = []
    for record_id in sorted(set(ids)):
        if ranges and record_id == ranges[-1][1] + 1:
            ranges[-1][1] = record_id
        else:
            ranges.append([record_id, record_id])
    return ranges


def ids_of_ranges(ranges):
    """Expand ``[first, last]`` ranges back into the list of ids."""
    return [record_id for first, last in ranges for record_id in range(first, last + 1)]
