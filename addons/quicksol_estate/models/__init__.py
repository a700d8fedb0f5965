# One import a line (easier diffs and merges).
from . import real_estate_company
from . import real_estate_agent
from . import real_estate_property
from . import real_estate_commission_transaction
from . import res_users
