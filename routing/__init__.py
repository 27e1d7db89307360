"""Routing and deadlines for the 12345 hotline, as plain typed Python (no web framework, no database).

- :mod:`routing.calendar`: working time in the Chinese calendar (statutory holidays, 调休 make-up days,
  admin overrides, office hours).
- :mod:`routing.deadlines`: deadline policies per kind × urgency × category, reminders, pauses (待补充).
- :mod:`routing.catalogue`: the dispatch catalogue (派单目录) matcher, category × area → lead unit.
- :mod:`routing.cli`: ``calendar add`` and friends for the ``hotline`` command line.

The lead engineer loads catalogue rules, overrides and policies from the database and passes them in;
nothing here reads configuration or storage on its own.
"""
