# One import a line (easier diffs and merges), so isort is told to leave the file alone.
from . import real_estate_company
from . import real_estate_agent
from . import real_estate_property
from . import real_estate_commission_transaction
from . import res_users
