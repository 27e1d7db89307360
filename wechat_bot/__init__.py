"""The WeChat official-account channel (微信公众号): protocol, API client, citizen-facing texts, webhook routes.

- ``crypto``: URL-verification and message signatures, AES-256-CBC message encryption (safe mode).
- ``messages``: parsing pushed XML safely, the message and event types, passive replies.
- ``client``: the WeChat API client (access token, customer-service and template messages, media download).
- ``texts``: every sentence the citizen reads in WeChat.
- ``settings``: ``HOTLINE_WECHAT_*``.
- ``routes``: ``/channels/wechat`` as a router factory that takes the intake's ``accept`` function.
"""
