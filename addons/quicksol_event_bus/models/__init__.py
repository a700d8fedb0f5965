from . import abstract_observer
from . import emitter_mixin
from . import event_bus
from . import event
from . import event_delivery
from . import outbox_writer
from . import outbox_publisher
from . import delivery_runner
