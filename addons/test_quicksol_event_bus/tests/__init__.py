from . import test_observer_registry
from . import test_emit
from . import test_run_async
from . import test_trap
from . import test_outbox_broker
from . import test_hostile_input
