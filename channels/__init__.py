"""Channels that bring citizens' requests to the one intake point: each speaks its provider's protocol."""
