"""Chat clients: OpenAI-compatible endpoints, the bundled local model, a record/replay cache, scripted replies."""
from .base import ChatClient, LLMError, Reply, TokenLogprob, parse_json_reply
from .scripted import ScriptedChat

__all__ = ["ChatClient", "LLMError", "Reply", "TokenLogprob", "parse_json_reply", "ScriptedChat"]
