"""Routing and deadlines for the 12345 hotline, as plain typed Python (no web framework, no database).

- :mod:`routing.calendar`: working time in the Chinese calendar (statutory holidays, 调休 make-up days,
  admin overrides, office hours).
- :mod:`routing.deadlines`: deadline policies per kind × urgency × category, reminders, pauses (待补充).
- :mod:`routing.catalogue`: the dispatch catalogue (派单目录) matcher, category × area → lead unit.
- :mod:`routing.scorecards`: what counts as met, missed or pending for a unit's three rates, the composite score.
- :mod:`routing.accountability`: which histories open an accountability case (问责), and the case labels.

``hotline`` loads catalogue rules, overrides, policies and ticket histories from the database and passes them in;
nothing here imports the rest of the project, a web framework or a database session (``tests/test_architecture.py``).
"""
