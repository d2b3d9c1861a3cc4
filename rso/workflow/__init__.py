"""The workflow engine: procedures as data, safeguards as code (DESIGN.md, principle 2).

- ``workflows/*.yaml`` declare each procedure (states, transitions, roles, guards, required
  fields, timeframes, four-eyes); :mod:`rso.workflow.loader` validates them with file:line errors.
- :mod:`rso.workflow.guards` holds the guard registry; domain packages plug their checks in with
  :func:`~rso.workflow.guards.register_guard_provider` (an unplugged check refuses).
- :mod:`rso.workflow.safeguards` lists the protections applied in code whatever a file says.
- :mod:`rso.workflow.engine` starts items and fires transitions; :mod:`rso.workflow.queues`
  serves the work queues; :mod:`rso.workflow.diagram` draws a procedure as SVG.

This module imports nothing on purpose, so ``rso.models`` can import the models without
pulling in the engine.
"""
