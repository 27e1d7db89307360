"""Open311 GeoReport v2: the protocol (``georeport``), its settings and a router factory over injected functions."""
