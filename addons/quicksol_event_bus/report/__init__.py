from . import event_report
