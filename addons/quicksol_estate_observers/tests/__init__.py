# test_*_plain.py are plain pytest (no odoo import) and are not imported here on purpose:
# the Odoo test runner only runs odoo.tests cases; pytest (pytest-odoo) collects them.
from . import test_prospector_auto_assign
from . import test_user_company_validator
from . import test_commission_split
from . import test_security_group_audit
from . import test_audit_log_access
from . import test_notifications
from . import test_property_import
from . import test_audit_log_browser
