"""How the pages name runs and feedback: the question an answer replied to, a score's tone."""

from __future__ import annotations

from typing import Any, Literal

Tone = Literal["", "good", "bad"]

FACE_WORDS = ("Awful", "Bad", "Okay", "Good", "Great")
"""The faces 😞 🙁 😐 🙂 😀 in words, for the buttons and labels that name them."""


def tone(score: float | None) -> Tone:
    """How a rating is coloured: good from the middle of the scale up, bad below, none unscored."""
    if score is None:
        return ""
    return "good" if score >= 0.5 else "bad"


def last_question(inputs: Any) -> str:
    """The last thing the user said in a run's inputs ("" when the run kept no messages)."""
    if isinstance(inputs, list):
        for message in reversed(inputs):
            if message.role == "user":
                return str(message.content)
    return ""
