from . import test_record
from . import test_log
from . import test_observers
from . import test_worker_observers
from . import fault_matrix
