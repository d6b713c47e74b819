"""Where a question and its answer are in a Gradio function's arguments and results.

A ``gr.ChatInterface`` calls its function with the user's message and the chat
so far and gets the answer back; a ``gr.Blocks`` chat calls handlers that take
the Chatbot's value (or a Textbox's) and return the Chatbot's new value. The
tracker logs both the same way; these classes tell it where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gradio as gr
from gradio.block_function import BlockFunction

from tuneback.errors import ConfigurationError
from tuneback.integrations.gradio_messages import (
    Turn,
    last_turn,
    text_of,
    trailing,
    turn_of,
    with_turn,
)

# Arguments Gradio adds to a handler's own by their type hints; they are not inputs.
_ADDED_ARGUMENTS = (gr.Request, gr.EventData, gr.Progress)
_TEXT_INPUTS = (gr.Textbox, gr.MultimodalTextbox)

HOW_TO_TRACK = (
    "track() needs a gr.ChatInterface, or a gr.Blocks with one gr.Chatbot and an event handler "
    "that takes the Chatbot's value (or a Textbox's) and returns the Chatbot with the answer "
    "(pass chatbot= when there are several); for another shape, log from your own code with "
    "tuneback.Client: log_run(...) for each answer and record_feedback(...) for each rating"
)


@dataclass(frozen=True)
class Asked:
    """A question: its text, the chat before it, and the settings it was asked with."""

    text: str
    before: Sequence[object]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """An answer in a function's result: its message, its question, and how to mark it."""

    message: object
    asked: Asked | None
    marked: Callable[[Turn], Any]
    """The whole result with the answer's message carrying ``turn``."""


class Calls(Protocol):
    """How the tracker reads one wrapped function's calls."""

    every_call_answers: bool
    """True when each call is an answer (a ChatInterface's); else only calls that show one."""

    def asked(self, args: Sequence[Any]) -> Asked | None: ...

    def conversation(self, args: Sequence[Any]) -> str | None:
        """The conversation the chat in the arguments belongs to, when they show it."""
        ...

    def shown(self, result: Any, current: Turn | None) -> Shown | None: ...

    def cleared(self, result: Any) -> bool: ...


def _joined(messages: Sequence[object]) -> str:
    return "\n".join(text for m in messages if (text := text_of(m)))


class InterfaceCalls:
    """A ChatInterface's function: ``fn(message, history, *additional_inputs)`` → the answer."""

    every_call_answers = True

    def __init__(self, demo: gr.ChatInterface) -> None:
        self.demo = demo

    def asked(self, args: Sequence[Any]) -> Asked:
        message, history, *extra = args
        return Asked(text_of(message), list(history or []), self._params(extra))

    def conversation(self, args: Sequence[Any]) -> None:
        return None  # the history holds it, up to the question

    def _params(self, values: Sequence[Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        inputs = self.demo.additional_inputs
        for index, (component, value) in enumerate(zip(inputs, values, strict=False)):
            if isinstance(value, (str, int, float, bool)) or value is None:
                label = getattr(component, "label", None)
                params[str(label) if label else f"input_{index}"] = value
        return params

    def shown(self, result: Any, current: Turn | None) -> Shown:
        extra: tuple[Any, ...] = ()
        if self.demo.additional_outputs and isinstance(result, tuple):
            result, *rest = result
            extra = tuple(rest)
        answer = result

        def marked(turn: Turn) -> Any:
            tagged = with_turn(answer, turn)
            return (tagged, *extra) if extra else tagged

        message = answer[-1] if isinstance(answer, list) and answer else answer
        return Shown(message, None, marked)

    def cleared(self, result: Any) -> bool:
        return False


class HandlerCalls:
    """A Blocks handler that returns the Chatbot's value, maybe among other outputs.

    The answer is the run of assistant messages that ends the returned chat,
    when it carries no other answer's ids; its question is the user's messages
    just before it. A handler that returns the chat empty clears it.
    """

    every_call_answers = False

    def __init__(self, handler: BlockFunction, chatbot: gr.Chatbot) -> None:
        self.inputs = list(handler.inputs)
        self.outputs = list(handler.outputs)
        self.chat_in = _index(self.inputs, chatbot)
        self.chat_out = _index(self.outputs, chatbot) or 0
        self.text_in = next(
            (i for i, c in enumerate(self.inputs) if isinstance(c, _TEXT_INPUTS)), None
        )

    def _chat_in(self, args: Sequence[Any]) -> list[object]:
        values = [a for a in args if not isinstance(a, _ADDED_ARGUMENTS)]
        return _list(_value_at(values, self.chat_in))

    def conversation(self, args: Sequence[Any]) -> str | None:
        """A retried first answer is asked with nothing before it, in the chat's conversation."""
        turn = last_turn(self._chat_in(args))
        return turn.conversation_id if turn else None

    def asked(self, args: Sequence[Any]) -> Asked | None:
        """The question a handler is about to answer, known before it shows anything."""
        values = [a for a in args if not isinstance(a, _ADDED_ARGUMENTS)]
        chat = _list(_value_at(values, self.chat_in))
        start = trailing(chat, "user")
        if start < len(chat):
            return Asked(_joined(chat[start:]), chat[:start])
        text = text_of(_value_at(values, self.text_in)).strip()
        return Asked(text, chat) if text else None

    def shown(self, result: Any, current: Turn | None) -> Shown | None:
        chat, put = self._chat(result)
        if not isinstance(chat, list) or not chat:
            return None
        start = trailing(chat, "assistant")
        turn = turn_of(chat[-1])
        if start == len(chat) or (turn is not None and turn != current):
            return None
        asked_from = trailing(chat[:start], "user")
        if asked_from == start:
            return None  # an assistant message with no question before it: a greeting
        asked = Asked(_joined(chat[asked_from:start]), chat[:asked_from])
        return Shown(chat[-1], asked, lambda turn: put(with_turn(chat, turn)))

    def cleared(self, result: Any) -> bool:
        chat, _ = self._chat(result)
        return chat is None or chat == []

    def _chat(self, result: Any) -> tuple[Any, Callable[[Any], Any]]:
        """The Chatbot's new value in ``result`` (``...`` if it has none), and how to replace it."""
        if len(self.outputs) == 1:
            return _unwrapped(result, lambda chat: chat)
        if isinstance(result, Mapping) and not _is_update(result):
            chatbot = self.outputs[self.chat_out]
            for component, value in result.items():
                if component is chatbot:
                    return _unwrapped(value, lambda chat: {**result, chatbot: chat})
        elif isinstance(result, (tuple, list)) and len(result) == len(self.outputs):
            index = self.chat_out

            def replaced(chat: Any) -> Any:
                values = list(result)
                values[index] = chat
                return type(result)(values)

            return _unwrapped(result[index], replaced)
        return ..., lambda chat: result


def _unwrapped(value: Any, put: Callable[[Any], Any]) -> tuple[Any, Callable[[Any], Any]]:
    """A chat given as ``gr.update(value=...)`` is read, and replaced, inside its update."""
    if _is_update(value):
        if "value" not in value:
            return ..., lambda chat: put(value)
        return value["value"], lambda chat: put({**value, "value": chat})
    return value, put


def _is_update(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("__type__") == "update"


def _index(components: Sequence[object], wanted: object) -> int | None:
    return next((i for i, c in enumerate(components) if c is wanted), None)


def _value_at(values: Sequence[Any], index: int | None) -> Any:
    return values[index] if index is not None and index < len(values) else None


def _list(value: Any) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


def interface_in(demo: gr.Blocks, chatbot: gr.Chatbot | None) -> gr.ChatInterface | None:
    """``demo`` itself when it is a ChatInterface, or one rendered inside it (on ``chatbot``)."""
    if isinstance(demo, gr.ChatInterface):
        return demo
    for handler in demo.fns.values():
        owner = getattr(handler.fn, "__self__", None)
        if isinstance(owner, gr.ChatInterface) and chatbot in (None, owner.chatbot):
            return owner
    return None


def chatbot_of(demo: gr.Blocks) -> gr.Chatbot:
    """The one Chatbot in ``demo``."""
    chatbots = [b for b in demo.blocks.values() if isinstance(b, gr.Chatbot)]
    if len(chatbots) != 1:
        found = "no gr.Chatbot" if not chatbots else f"{len(chatbots)} gr.Chatbot components"
        raise ConfigurationError(f"this gr.Blocks has {found}: {HOW_TO_TRACK}")
    return chatbots[0]


def answering_handlers(
    demo: gr.Blocks, chatbot: gr.Chatbot
) -> list[tuple[BlockFunction, Callable[..., Any]]]:
    """The handlers that set the chat, with their functions: one may answer (or clear it).

    At least one must take the chat, or a Textbox, to have a question to answer.
    """
    handlers = [
        (handler, handler.fn)
        for handler in demo.fns.values()
        if handler.fn is not None and any(c is chatbot for c in handler.outputs)
    ]
    if not any(
        any(c is chatbot or isinstance(c, _TEXT_INPUTS) for c in handler.inputs)
        for handler, _ in handlers
    ):
        raise ConfigurationError(
            "no event handler of this gr.Blocks takes a question and returns its Chatbot's "
            f"messages: {HOW_TO_TRACK}"
        )
    return handlers


def clearing_triggers(demo: gr.Blocks, chatbot: gr.Chatbot) -> list[Callable[..., Any]]:
    """The events (a ``gr.ClearButton``'s click) that empty the chat in the browser alone."""
    triggers = []
    for handler in demo.fns.values():
        if handler.fn is None and any(c is chatbot for c in handler.outputs):
            for block_id, event in handler.targets:
                block = None if block_id is None else demo.blocks.get(block_id)
                if isinstance(block, gr.ClearButton):
                    triggers.append(getattr(block, event))
    return triggers


__all__ = [
    "HOW_TO_TRACK",
    "Asked",
    "Calls",
    "HandlerCalls",
    "InterfaceCalls",
    "Shown",
    "answering_handlers",
    "chatbot_of",
    "clearing_triggers",
    "interface_in",
]
