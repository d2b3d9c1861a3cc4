"""Registration signals: other domains (queues, profiling, reporting) react without importing
registration internals. Receivers get the ``Case`` as sender and keyword arguments only.
"""

from blinker import Namespace

_signals = Namespace()

#: a case was registered: ``(case, session=, user=)``
case_registered = _signals.signal("registration.case-registered")
#: a case or its members were corrected: ``(case, session=, user=, fields=[...])``
case_corrected = _signals.signal("registration.case-corrected")
#: the case's priority changed: ``(case, session=, old=, new=)``
priority_changed = _signals.signal("registration.priority-changed")
