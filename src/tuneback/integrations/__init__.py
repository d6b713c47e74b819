"""Integrations that log an app's model calls to tuneback through the SDK.

Each one lives in its own module and imports its framework only when it is
used, so ``import tuneback`` never needs them:

* :mod:`tuneback.integrations.openai` — wrap an ``openai.OpenAI`` or
  ``AsyncOpenAI`` client so every chat completion is logged as a run;
* :mod:`tuneback.integrations.langchain` — a callback handler and ``trace()``
  that log LangChain model calls and chains as run trees;
* :mod:`tuneback.integrations.streamlit` — ``st.feedback`` ratings recorded
  once per change (retracted on un-click) and ``write_stream`` logging a run;
* :mod:`tuneback.integrations.gradio` — ``track(demo)`` on a ``gr.ChatInterface``
  or a ``gr.Blocks`` chat: answers as runs in conversations, the Chatbot's like,
  retry, undo, copy, clear and a comment box as feedback;
  :mod:`tuneback.integrations.gradio_mount` serves such an app inside
  ``tuneback serve --gradio``.
"""
