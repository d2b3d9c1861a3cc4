"""What RSD tells other domains. Receivers get ``sender=session`` and keyword arguments.

- ``claim_lodged``: a claim (or a re-opened one) now covers ``person_ids``; a return in
  progress for any of them must stop at once (non-refoulement).
- ``appeal_lodged``: an appeal was lodged for ``person_ids`` (a late one included).
"""
from blinker import Namespace

_signals = Namespace()

claim_lodged = _signals.signal("rsd.claim_lodged")
appeal_lodged = _signals.signal("rsd.appeal_lodged")
