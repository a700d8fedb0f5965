from . import extra_observer
