"""Channel adapters for phone (Twilio), the city forum and Open311: each verifies its sender, parses its protocol
into one inbound message and hands it to the one intake point (``hotline.inbound``); nothing after that differs
between channels."""
