"""Instruction data: prompt/response tables or chat ``messages`` lists, read as conversations.

Each record becomes a ``Chat``: its messages (``system``/``user``/``assistant``), and, as for any
``Pair``, a source (the last user message, shown beside generations) and references (the final assistant
response, or the split's ``reference_columns`` for multi-reference scoring). Rendering with the
tokenizer's chat template happens later (``lmlab.data.chat_render``): the tokenizer is not known here.
Files are found as ``PairSource`` finds tables (local JSONL/CSV/TSV per split or ``{split}`` pattern,
then the hub).
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmlab.data.sources.pairs import Pair, PairSource
from lmlab.data.sources.text import Lines
from lmlab.data.tables import field_names, get_field, has_field
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")


@dataclass
class Chat(Pair):
    """A conversation ending in the assistant turn that generation is scored on."""

    messages: list[dict[str, str]] = field(default_factory=list)


class InstructionSource(PairSource):
    """Conversations per split, from a ``messages`` column or from prompt/response columns.

    A record with ``messages_column`` is a chat: a list of ``{"role", "content"}`` objects, roles from
    ``ROLES``, ending with an assistant turn. Otherwise it is one exchange: the user message is
    ``prompt_template`` filled with the record's columns (``"{prompt}"``, or e.g. ``"Summarize the
    dialogue.\\n\\n{dialogue}"``), the response is ``response_column``, and ``system_column`` or
    ``system_prompt`` (if set) comes first as the system message.

    Args (beyond ``PairSource``'s files, hub, reference_columns, name, empty_rows, encoding_errors):
        messages_column: the column of chat records.
        prompt_template: the user message of prompt/response records; ``{column}`` is a column's value
            (literal braces doubled: ``{{``).
        response_column: the assistant response of prompt/response records.
        system_column, system_prompt: a system message per record, or one for all records.
    """

    def __init__(
        self,
        files: str | dict[str, str | None] | None = None,
        messages_column: str = "messages",
        prompt_template: str = "{prompt}",
        response_column: str = "response",
        system_column: str | None = None,
        system_prompt: str | None = None,
        reference_columns: dict[str, list[str]] | None = None,
        hub_path: str | None = None,
        hub_name: str | None = None,
        hub_splits: dict[str, str] | None = None,
        name: str = "custom",
        empty_rows: str = "error",
        encoding_errors: str = "strict",
    ) -> None:
        try:
            self.prompt_fields = [f for _, f, _, _ in string.Formatter().parse(prompt_template) if f]
        except ValueError as e:
            raise ConfigError(
                f"data.source.prompt_template={prompt_template!r} is not a valid template ({e}); name columns "
                "as {column} and double literal braces ({{ and }})"
            ) from None
        if any(not f.isidentifier() for f in self.prompt_fields):
            raise ConfigError(
                f"data.source.prompt_template={prompt_template!r}: fields must be plain column names "
                f"({self.prompt_fields}); double literal braces ({{{{ and }}}})"
            )
        super().__init__(
            files, source_column=messages_column, target_column=response_column,
            reference_columns=reference_columns, hub_path=hub_path, hub_name=hub_name, hub_splits=hub_splits,
            name=name, empty_rows=empty_rows, encoding_errors=encoding_errors,
        )  # fmt: skip
        self.messages_column, self.prompt_template = messages_column, prompt_template
        self.response_column = response_column
        self.system_column, self.system_prompt = system_column, system_prompt

    # ------------------------------------------------------------------------------------ columns
    def _columns(self, split: str, record: dict[str, Any], where: str) -> list[str]:
        """The response columns of a prompt/response split ([] for chat records)."""
        if has_field(record, self.messages_column):
            return []
        refs = self.reference_columns.get(split, [])
        present = [c for c in refs if has_field(record, c)]
        targets = present if present else [self.response_column]
        needed = self.prompt_fields + targets + ([self.system_column] if self.system_column else [])
        missing = [c for c in needed if not has_field(record, c)]
        if missing:
            raise DataError(
                f"{where}: no column(s) {missing} (found {field_names(record)}); chat records need "
                f"data.source.messages_column={self.messages_column!r}, prompt/response records the columns "
                "of data.source.prompt_template and data.source.response_column"
            )
        return targets

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            if self._locate(split).kind == "parallel":
                raise ConfigError(
                    f"data.source.files for {split!r}: instruction data is one table per split "
                    "(.jsonl/.csv/.tsv), not parallel text"
                )
        super().check(splits)

    # ------------------------------------------------------------------------------------ reading
    def pairs(self, split: str, limit: int | None = None) -> list[Pair]:
        """The first ``limit`` conversations of a split; empty turns per ``empty_rows``."""
        found = self._locate(split)
        out: list[Pair] = []
        skipped = 0
        targets: list[str] | None = None
        for where, record in self._records(split, found):
            if limit is not None and len(out) >= limit:
                break
            if targets is None and not has_field(record, self.messages_column):  # the first pair record
                targets = self._columns(split, record, where)
            chat = self._chat(record, where, targets or [])
            if chat is None:
                skipped += 1
                continue
            out.append(chat)
        if skipped:
            log.warning("%s: skipped %d conversation(s) with an empty message", self.describe(split), skipped)
        if not out:
            raise DataError(f"{self.describe(split)}: no usable conversations")
        return out

    def _chat(self, record: dict[str, Any], where: str, targets: list[str]) -> Chat | None:
        if has_field(record, self.messages_column):
            messages = parse_messages(get_field(record, self.messages_column), where)
            refs = [messages[-1]["content"]]
        else:
            values = {name: _column(record, name, where) for name in self.prompt_fields}
            messages = []
            system = _column(record, self.system_column, where) if self.system_column else self.system_prompt
            if system:
                messages.append({"role": "system", "content": system})
            refs = [_column(record, c, where) for c in targets]
            messages.append({"role": "user", "content": self.prompt_template.format_map(values)})
            messages.append({"role": "assistant", "content": refs[0]})
        empty = next((m["role"] for m in messages if not m["content"].strip()), None)
        if empty is None and not all(refs):
            empty = "reference"
        if empty:
            if self.empty_rows == "error":
                raise DataError(
                    f"{where}: empty {empty} message; remove the record, or set data.source.empty_rows=skip "
                    "to drop such records"
                )
            return None
        source = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        return Chat(source, refs, where, messages)

    # ------------------------------------------------------------------ TextSource (tokenizer training)
    def fingerprint(self, split: str) -> str:
        settings = f"{self.prompt_template}|{self.system_column}|{self.system_prompt}"
        return f"instructions-{super().fingerprint(split)}-{settings}"

    def iter_lines(self, split: str) -> Lines:
        """Every message as a document: a tokenizer trained on them covers prompts and responses."""
        for chat in self.pairs(split):
            for message in chat.messages:  # type: ignore[attr-defined]
                for line in message["content"].splitlines():
                    yield line + "\n", True


def parse_messages(value: Any, where: str) -> list[dict[str, str]]:
    """Validate a chat: a list of ``{"role", "content"}`` with known roles, a user turn, ending with the
    assistant turn that is the generation target."""
    if isinstance(value, str):
        try:
            value = json.loads(value)  # CSV/TSV cells hold the list as JSON text
        except json.JSONDecodeError:
            raise DataError(f"{where}: messages is text that is not a JSON list of messages") from None
    if not isinstance(value, list) or not value:
        raise DataError(
            f'{where}: messages must be a non-empty list of {{"role": ..., "content": ...}} objects, '
            f"not {type(value).__name__}"
        )
    messages = []
    for k, m in enumerate(value):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f'{where}: message {k} is not an object with "role" and "content" ({m!r:.80})')
        if m["role"] not in ROLES:
            raise DataError(
                f"{where}: message {k} has role {m['role']!r}; allowed roles are {', '.join(ROLES)}. "
                "Rename the role in the file (e.g. human -> user, gpt -> assistant)"
            )
        messages.append({"role": m["role"], "content": _text(m["content"])})
    if messages[-1]["role"] != "assistant":
        raise DataError(
            f"{where}: the last message has role {messages[-1]['role']!r}; a conversation must end with the "
            "assistant response that is trained and scored"
        )
    if not any(m["role"] == "user" for m in messages):
        raise DataError(f"{where}: no user message; a conversation needs a user turn before the response")
    return messages


def _column(record: dict[str, Any], name: str, where: str) -> str:
    try:
        return _text(get_field(record, name))
    except KeyError:
        raise DataError(
            f"{where}: no column {name!r} (found {field_names(record)}); every record needs the columns of "
            "the first one, or a messages list"
        ) from None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
