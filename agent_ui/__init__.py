"""The real-time web desk of the 12345 hotline: pages for agents, units, callbacks and supervisors, and the live
WebSocket channel that pushes ticket events to exactly the people allowed to see them.

``agent_ui.web.mount(app, services)`` is called by ``hotline.app.create_app``.
"""
