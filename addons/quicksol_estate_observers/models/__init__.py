# One import a line (easier diffs and merges), so isort is told to leave the file alone.
# isort: skip_file
from . import emission_context
from . import property_import_batch
from . import user_notification
from . import quicksol_audit_log
from . import real_estate_commission_transaction
from . import real_estate_property
from . import res_users
from . import prospector_auto_assign_observer
from . import user_company_validator_observer
from . import commission_split_observer
from . import security_group_audit_observer
from . import commission_notify_observer
from . import property_import_notify_observer
