"""Text bound for a terminal: control characters made visible (DESIGN §2: one clear line on stderr)."""
from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str, keep_newlines: bool = False) -> str:
    """Control characters (ESC sequences, carriage returns, bidi overrides) as visible ``\\x1b`` escapes.

    Model names and exception texts reach the terminal; raw, an ESC sequence
    could clear the screen or fake a "wrote out.html" line.  Newlines become
    ``\\n`` too (unless ``keep_newlines``), so every message stays one line.
    """
    def escape(m: re.Match[str]) -> str:
        ch = m.group(0)
        if keep_newlines and ch in "\n\t":
            return ch
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return _CONTROL.sub(escape, text)


__all__ = ["terminal_safe"]
