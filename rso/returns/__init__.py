"""The return queue with non-refoulement safeguards: entry after a final negative RSD decision,
a migrant's own request for assisted voluntary return, or a refugee's own signed request for
voluntary repatriation; counselling to post-return monitoring (``workflows/return.yaml``).

Other domains use :func:`rso.returns.operations.suspend_for_new_claim` (RSD, when a claim or
subsequent application is lodged) and :func:`rso.returns.stats.return_statistics` (reports).
The safeguard table lives in :mod:`rso.returns.safeguards`. This module imports nothing, so
``rso.models`` can import the models alone.
"""
