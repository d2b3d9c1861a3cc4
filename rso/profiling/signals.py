"""Profiling signals: other domains (RSD, returns, reporting) react without importing profiling
internals. Receivers get the row as sender and keyword arguments only."""

from blinker import Namespace

_signals = Namespace()

#: a profile was recorded or updated: ``(profile, session=, user=, created=)``
profile_recorded = _signals.signal("profiling.profile-recorded")
#: a referral was proposed: ``(referral, session=, user=)``; RSD referrals carry ``rsd_procedure``
referral_proposed = _signals.signal("profiling.referral-proposed")
#: a referral's procedure took a step: ``(referral, session=, user=, transition=, state=)``
referral_changed = _signals.signal("profiling.referral-changed")
