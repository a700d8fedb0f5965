"""Which written values an after-write event carries: small ones, never binaries.

A write's after-event (``property.updated``) names every changed field in ``changed`` and
carries the new values in ``vals`` so observers need not read the record again. Binary values
(images, attachments: a 200 KB avatar) and values too large for an event stay out of
``vals``; they are listed in ``omitted`` and the observer reads them from the record. So the
event of a save can never be too large for the bus, and never fails the save.

>>> trim_write_values({"name": "Ana", "image_1920": "iVBORw0KGgo..."}, binary={"image_1920"})
({'name': 'Ana'}, ['image_1920'])
>>> trim_write_values({"note": "x" * 100, "name": "Ana"}, binary=(), budget=60)
({'name': 'Ana'}, ['note'])
"""

from .payload import canonical_json

__all__ = ["DEFAULT_VALUES_BUDGET", "trim_write_values"]

# 64 KiB of written values in one event: a quarter of quicksol_bus.payload's default limit,
# which leaves room for up to 10,000 record ids (80 KB) and the other keys.
DEFAULT_VALUES_BUDGET = 64 * 1024


def trim_write_values(values, binary=(), budget=DEFAULT_VALUES_BUDGET):
    """Return ``(kept, omitted)``: ``values`` without the ``binary`` fields and, largest first,
    without the values that would take the encoded dict over ``budget`` bytes."""
    kept = {name: value for name, value in values.items() if name not in binary}
    omitted = sorted(name for name in values if name in binary)
    sizes = {name: len(canonical_json(value)) for name, value in kept.items()}
    total = len(canonical_json(kept)) if kept else 0
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        if total <= budget:
            break
        del kept[name]
        omitted.append(name)
        total -= sizes[name] + len(canonical_json(name)) + 2  # the key, its colon and a comma
    return kept, sorted(omitted)
