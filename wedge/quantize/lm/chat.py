"""A model's chat template (Jinja, as in tokenizer_config.json or GGUF's tokenizer.chat_template) turned into the
prompt text an instruct model was trained on.

Rendered the way transformers' `apply_chat_template` renders it: a sandboxed Jinja environment with
`raise_exception`, `strftime_now` and a `tojson` filter, `bos_token` / `eos_token` as variables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from wedge.errors import first_line
from wedge.quantize.lm.errors import ChatTemplateError


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template and the special-token strings it refers to."""

    template: str
    bos_token: str | None = None
    eos_token: str | None = None

    def render(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text for `messages` ({"role", "content"} each), ending where the assistant speaks."""
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise ChatTemplateError(f"the chat template refused the conversation: {message}")

        def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
                   separators: Any = None, sort_keys: bool = False) -> str:
            return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                              sort_keys=sort_keys)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            return env.from_string(self.template).render(
                messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token or "", eos_token=self.eos_token or "")
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"the chat template cannot be rendered: {first_line(exc)}") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> ChatTemplate | None:
        """The metadata form back (None for absent or damaged metadata)."""
        if not text:
            return None
        try:
            values = json.loads(text)
            return cls(template=str(values["template"]), bos_token=values.get("bos_token"),
                       eos_token=values.get("eos_token"))
        except (ValueError, KeyError, TypeError):
            return None


def token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def template_text(value: Any) -> str | None:
    """tokenizer_config.json's chat_template: a string, or a list of {"name", "template"} (take "default")."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {entry.get("name"): entry.get("template") for entry in value if isinstance(entry, Mapping)}
        chosen = named.get("default") or next(iter(named.values()), None)
        return chosen if isinstance(chosen, str) else None
    return None
