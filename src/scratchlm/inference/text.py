"""Streaming text out of a stream of token ids: UTF-8 split across tokens, and stop strings.

Byte-level BPE tokens are byte strings, so one character (an accent, CJK, an emoji) may span two or
more tokens. `TextAssembler` feeds each token's bytes to an incremental UTF-8 decoder, which holds
an incomplete character back until its last byte arrives; it then withholds any tail that could be
the start of a stop string, and reports when a stop string appears (the text is cut before it).
"""

import codecs


def split_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The part of `text` that is safe to show, and whether a stop string occurs in it.

    With a stop string present: the text before its earliest occurrence, True. Otherwise: the text
    minus its longest tail that is a proper prefix of some stop string (more text may complete
    it), False.
    """
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if hits:
        return text[: min(hits)], True
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:n]):
                hold = n
                break
    return text[: len(text) - hold], False


class TextAssembler:
    """Turns token bytes into text pieces of whole characters that never cross a stop string."""

    def __init__(self, stops: tuple[str, ...] = ()) -> None:
        self.stops = stops
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # decoded but not shown yet (a possible stop-string start)
        self.stopped = False

    def push(self, data: bytes) -> str:
        """Add one token's bytes; return the new text that can be shown now ('' if none)."""
        return self._release(self._decoder.decode(data))

    def finish(self) -> str:
        """Generation ended: flush what was held back (an incomplete character becomes U+FFFD)."""
        if self.stopped:
            return ""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return text

    def _release(self, new: str) -> str:
        if self.stopped:
            return ""
        text = self._pending + new
        shown, self.stopped = split_at_stop(text, self.stops)
        self._pending = "" if self.stopped else text[len(shown) :]
        return shown
