"""Profiling and referral (UNHCR 10-Point Plan): after registration each person gets a short
structured interview and a profile category; referral rules (``workflows/referral-rules.yaml``)
propose pathways (RSD, best interests, anti-trafficking, medical care, assisted voluntary return,
migration options); referrals to partners run the ``referral`` procedure, and a ``partner``
account sees only the referrals addressed to its organisation and only the fields they share.

Other domains use :func:`rso.profiling.operations.best_interests_done` and
:func:`~rso.profiling.operations.pending_best_interests`, and the signals in
:mod:`rso.profiling.signals`.
"""
