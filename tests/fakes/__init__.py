"""Fakes of services outside this machine (Twilio), driven by the real client libraries."""
