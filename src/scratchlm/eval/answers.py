"""Reading a final answer out of a model's free text: a number (GSM8K style) or an option letter.

`parse_gsm8k_response` gives the last number in the text ("-3", "1250", "2.5"; thousands commas
dropped) and grades the default task's arithmetic half; `parse_mmlu_response` gives the letter of
the option a multiple-choice answer picks. Both return None when the text has no answer.
"""

import re
import string
from typing import Any

_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LETTER_RE = r"\(?([{letters}])\)?"


def parse_gsm8k_response(text: str) -> str | None:
    """The last number in `text` as a string without thousands commas, or None."""
    numbers = _NUMBER_RE.findall(text)
    if not numbers:
        return None
    return numbers[-1].rstrip(",").replace(",", "")


def parse_mmlu_response(example: dict[str, Any], text: str) -> str | None:
    """The option letter ("A", "B", ...) that `text` chooses among `example["options"]`, or None.

    Accepted: "The correct answer is B", "answer: (C)", or a text that starts with the letter
    ("B", "B. Paris", "(B) Paris"; not "A cat ..."); the letter must name one of the options.
    """
    letters = string.ascii_uppercase[: len(example["options"])]
    letter = _LETTER_RE.format(letters=letters)
    stated = re.search(rf"(?i:answer(?: is)?:?)\s*{letter}(?![A-Za-z])", text)
    if stated:
        return stated[1]
    leading = re.match(rf"\s*(?:\(([{letters}])\)|([{letters}])(?:[.):]|$))", text)
    return (leading[1] or leading[2]) if leading else None
