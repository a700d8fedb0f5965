"""Which records an x2many value links: read ``vals['estate_company_ids']`` without the ORM.

What is it?
    The UserCompanyValidator must know which estate companies a ``create``/``write`` value
    would *give* a user, whatever form the caller used. This module answers it in plain
    Python (no ``odoo`` import), so every command form is unit-tested without a database.

How does it work?
    Odoo accepts, for a many2many field, a list of commands (tuples or lists, or
    ``Command.*`` which are the same tuples) or a plain list of ids (meaning "set").
    :func:`linked_ids` returns ``(ids, replaces)``: the ids the value links, and whether it
    replaces the current set (``SET``/``CLEAR``/plain ids) or adds to it.

How to use it?
    >>> linked_ids([(6, 0, [1, 2])])
    ({1, 2}, True)
    >>> linked_ids([(4, 3), [4, 5, 0]])
    ({3, 5}, False)
    >>> linked_ids([1, 2])
    ({1, 2}, True)
    >>> linked_ids([(5, 0, 0), (4, 7, 0)])
    ({7}, True)
    >>> linked_ids([(3, 2, 0), (2, 4, 0)])
    (set(), False)

Caveats
    ``CREATE`` (0) makes a new record the user would be linked to; it has no id yet, so
    :func:`creates_records` reports it apart and the caller decides (the validator refuses
    it for owners: a new estate company is not one they belong to). ``UPDATE`` (1) edits a
    linked record without linking anything new. Anything else raises ``ValueError``, so an
    unknown form is refused rather than let through.
"""

__all__ = ["CREATE", "UPDATE", "DELETE", "UNLINK", "LINK", "CLEAR", "SET", "linked_ids", "creates_records"]

# Odoo's fields.Command values (odoo/fields.py), repeated here to keep this module Odoo-free.
CREATE, UPDATE, DELETE, UNLINK, LINK, CLEAR, SET = range(7)


def _commands(value):
    """Yield the commands of ``value`` as tuples; plain ids become one SET command."""
    if not value:
        return
    if isinstance(value, (list, tuple)) and all(isinstance(item, int) for item in value):
        yield (SET, 0, list(value))
        return
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"unsupported x2many value: {value!r}")
    for command in value:
        if not isinstance(command, (list, tuple)) or not command:
            raise ValueError(f"unsupported x2many command: {command!r}")
        yield tuple(command)


def linked_ids(value):
    """Return ``(ids, replaces)`` for an x2many write value; see the module docstring.

    ``ids`` is the set of existing records linked by the value's last replacing command
    and every LINK after it; ``replaces`` is True when the value replaces the current set.

    >>> linked_ids(False)
    (set(), False)
    >>> linked_ids([(6, 0, [1]), (6, 0, [2])])
    ({2}, True)
    >>> linked_ids([(9, 1)])
    Traceback (most recent call last):
    ...
    ValueError: unsupported x2many command: (9, 1)
    """
    ids, replaces = set(), False
    for command in _commands(value):
        code = command[0]
        if code == SET:
            ids, replaces = {int(i) for i in (command[2] if len(command) > 2 else None) or ()}, True
        elif code == CLEAR:
            ids, replaces = set(), True
        elif code == LINK:
            ids.add(int(command[1]))
        elif code in (UNLINK, DELETE):
            ids.discard(int(command[1]))
        elif code not in (CREATE, UPDATE):
            raise ValueError(f"unsupported x2many command: {command!r}")
    return ids, replaces


def creates_records(value):
    """Tell whether the value creates new linked records (``CREATE`` commands).

    >>> creates_records([(0, 0, {"name": "New"})])
    True
    >>> creates_records([1, 2])
    False
    """
    return any(command[0] == CREATE for command in _commands(value))
