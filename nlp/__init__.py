"""Text analysis for the 12345 hotline: segmentation, category classifier, kind/urgency/places, duplicates,
knowledge search. A plain library (no web framework, no database): the ``hotline`` package wires it in."""
