"""Resettlement: the queue of recognised refugees, needs assessment (submission categories,
priority and its processing targets), States' pledges and the dashboard of pledged,
submitted, accepted and departed places, fair shares under a configurable distribution key,
matching cases to pledges (solved exactly, compared with a greedy allocation, explained per
case, only proposed until a supervisor accepts it), the procedure from identification to
departure with split decisions, the submission dossier (RRF) and emergency transit facilities.

Importing the package plugs resettlement into the workflow engine (:mod:`rso.resettlement.hooks`).
"""
from rso.resettlement import hooks as _hooks  # noqa: F401  (guard provider, fire handler, resolver)
