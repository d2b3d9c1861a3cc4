"""Harmonised refugee status determination: claims, interviews, assessment, four-eyes review,
decision letters, appeals, prima facie group recognition and the harmonisation dashboard.

Importing the package plugs the RSD checks into the workflow engine's provided guards
(:mod:`rso.rsd.guards`); other domains ask :mod:`rso.rsd.status` where a person stands.
"""
from rso.rsd import guards as _guards  # noqa: F401  (registers the guard providers)
