"""The channels citizens write through (forum, Open311, ...): each one's protocol, ending at the one intake point."""
