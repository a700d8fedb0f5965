# test_commission_split_plain.py is plain pytest (no odoo import) and is not
# imported here on purpose: the Odoo test runner only runs odoo.tests cases.
# One import a line, so isort is told to leave the file alone.
from . import test_commission_split
from . import test_events
from . import test_security
from . import test_owner_users
