"""JSON schemas of OpenAI's fine-tuning file lines, written from its fine-tuning guides.

Supervised: ``{"messages": [...]}`` with system/user/assistant messages, at least
one from the assistant. Preference (DPO): ``{"input": {"messages": [...]},
"preferred_output": [one assistant message], "non_preferred_output": [one
assistant message]}``.
"""

from __future__ import annotations

from typing import Any

MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {"type": "string"},
        "weight": {"enum": [0, 1]},
    },
    "additionalProperties": False,
}

ASSISTANT_ONLY: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 1,
    "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
        "additionalProperties": False,
    },
}

SUPERVISED: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "items": MESSAGE,
            "minItems": 2,
            "contains": {"type": "object", "properties": {"role": {"const": "assistant"}}},
        },
        "tools": {"type": "array"},
        "parallel_tool_calls": {"type": "boolean"},
    },
    "additionalProperties": False,
}

PREFERENCE: dict[str, Any] = {
    "type": "object",
    "required": ["input", "preferred_output", "non_preferred_output"],
    "properties": {
        "input": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "messages": {"type": "array", "items": MESSAGE, "minItems": 1},
                "tools": {"type": "array"},
                "parallel_tool_calls": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "preferred_output": ASSISTANT_ONLY,
        "non_preferred_output": ASSISTANT_ONLY,
    },
    "additionalProperties": False,
}
