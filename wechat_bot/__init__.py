"""The WeChat official-account (微信公众号) channel: server verification, safe-mode crypto, message parsing and
replies, over the one intake point (``hotline.inbound``)."""
