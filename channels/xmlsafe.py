"""Text that can go into an XML 1.0 document: the characters XML forbids (most C0 controls, lone surrogates,
U+FFFE/U+FFFF) are dropped rather than making the whole document unparsable."""

from __future__ import annotations

import re

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)
