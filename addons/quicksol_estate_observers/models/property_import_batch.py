"""The events of a property import, and how the import's properties are told apart."""

__all__ = [
    "IMPORT_AUDITED_EVENT",
    "IMPORT_COMPLETED_EVENT",
    "IMPORT_CONTEXT_KEY",
    "PropertyImportBatch",
    "import_batch_of",
]

# Emitted by the import wizard once the properties are created (the audit observer writes
# their audit rows from it), then by the audit observer once those rows are written (the
# import notifier tells the user). Chained events: nobody waits for another queue's work.
IMPORT_COMPLETED_EVENT = "property.import.completed"
IMPORT_AUDITED_EVENT = "property.import.audited"
IMPORT_CONTEXT_KEY = "quicksol_property_import_batch"


class PropertyImportBatch:
    """Context value set by the import wizard while it creates properties.

    An object, not a string: an RPC caller's context is JSON, so nobody can pass one and
    have their own ``property.created`` events taken for an import's (whose audit rows the
    import's completion event writes, see the SecurityGroupAudit observer).
    ``res_ids`` collects the ids of the ``property.created`` events emitted under it.
    """

    def __init__(self, import_id):
        self.import_id = import_id
        self.res_ids = []


def import_batch_of(env):
    """The :class:`PropertyImportBatch` of ``env``'s context, or None."""
    batch = env.context.get(IMPORT_CONTEXT_KEY)
    return batch if isinstance(batch, PropertyImportBatch) else None
