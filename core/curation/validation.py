"""Line-by-line checks of chat JSONL (OpenAI cookbook codes plus ours) and format conversion."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
ALLOWED_MESSAGE_KEYS = {"role", "content", "name", "weight"}
MAX_CONTENT_CHARS = 100_000  # one message; beyond this it is a paste accident, not an example
MAX_LINE_BYTES = 2_000_000

Messages = list[dict[str, Any]]
TokenCounter = Callable[[Messages], int]

# Stable codes shown to users and in --json; the first seven are the OpenAI cookbook's checks.
CODES = {
    "data_type": "the line is not a JSON object",
    "missing_messages_list": "no 'messages' list",
    "message_missing_key": "a message lacks 'role' or 'content'",
    "message_unrecognized_key": "a message has a key other than role/content/name/weight",
    "unrecognized_role": "a role other than system/user/assistant",
    "missing_content": "a message's content is not text",
    "example_missing_assistant_message": "no assistant message",
    "invalid_json": "not valid JSON",
    "not_utf8": "not UTF-8 text",
    "empty_messages": "the messages list is empty",
    "blank_content": "a message's content is empty or only spaces",
    "content_too_large": f"a message is over {MAX_CONTENT_CHARS:,} characters",
    "line_too_large": f"the line is over {MAX_LINE_BYTES:,} bytes",
    "not_ending_on_assistant": "the conversation does not end on an assistant turn",
    "duplicate_in_file": "exact duplicate of an earlier line in this file",
    "duplicate_in_dataset": "exact duplicate of an example already in the dataset",
    "too_long": "longer than the model's max length (warning)",
    "too_deep": "JSON nested too deeply to be an example",
    "non_standard_number": "NaN or Infinity, which standard JSON does not allow",
    "lone_surrogate": "a \\ud800-style escape that is not a character (invalid Unicode)",
    "duplicate_key": "a key written twice in one object (JSON would silently keep the last)",
    "control_character": "an invisible control character (NUL, a bidi override such as U+202E) in content",
    # Spreadsheet and Hugging Face imports (issue 27): the row number is the spreadsheet's row.
    "formula_without_value": "a formula cell with no saved value (the studio never evaluates formulas)",
    "unknown_split": "a split cell other than train or heldout",
}

# Characters refused in content (issue 23): C0 controls other than tab, line feed and carriage return
# (NUL among them) and DEL, which tokenizers and terminals treat unpredictably, and the bidi
# embedding, override and isolate controls, which make shown text read differently from what the
# model trains on ("Trojan Source"). Left-to-right and right-to-left marks stay: real RTL text uses them.
_REFUSED_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class DuplicateKey(ValueError):
    """A JSON object with the same key twice."""


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _strict_loads(text: str) -> Any:
    """Standard JSON only: NaN, Infinity and -Infinity are refused (Python accepts them)."""
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys)


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass(frozen=True)
class LineProblem:
    line: int
    code: str
    message: str
    severity: str = "error"  # "error" keeps the line out; "warning" imports it

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class ParsedLine:
    line: int
    raw: str
    messages: Messages | None
    source_format: str
    problems: tuple[LineProblem, ...] = ()
    split: str = ""  # a spreadsheet row's own split; "" takes the import's split
    tags: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.messages is not None and not any(p.severity == "error" for p in self.problems)


@dataclass
class ParseResult:
    lines: list[ParsedLine] = field(default_factory=list)
    blank: int = 0
    formats: dict[str, int] = field(default_factory=dict)


def canonical_json(messages: Messages) -> str:
    """The one JSON text of an example: used for hashing, versions and export."""
    ordered = [{"role": m["role"], "content": m["content"],
                **{k: m[k] for k in sorted(m) if k not in ("role", "content")}} for m in messages]
    return json.dumps({"messages": ordered}, ensure_ascii=False, separators=(",", ":"))


def content_hash(messages: Messages) -> str:
    return hashlib.sha256(canonical_json(messages).encode("utf-8")).hexdigest()


def convert(obj: Any) -> tuple[str, Any]:
    """Detect the line's format and convert it to OpenAI chat messages (returned unchecked)."""
    if not isinstance(obj, dict):
        return "unknown", None
    if "messages" in obj:
        return "openai", obj["messages"]
    if "conversations" in obj and isinstance(obj["conversations"], list):
        role_map = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                    "assistant": "assistant", "bot": "assistant"}
        converted = []
        for turn in obj["conversations"]:
            if not isinstance(turn, dict):
                converted.append(turn)
                continue
            role = role_map.get(str(turn.get("from", "")), turn.get("from"))
            converted.append({"role": role, "content": turn.get("value")})
        return "sharegpt", converted
    if "instruction" in obj and "output" in obj:
        prompt = str(obj.get("instruction") or "")
        if obj.get("input"):
            prompt = f"{prompt}\n\n{obj['input']}"
        return "alpaca", [{"role": "user", "content": prompt},
                          {"role": "assistant", "content": obj["output"]}]
    if "prompt" in obj and "completion" in obj:
        return "prompt_completion", [{"role": "user", "content": obj["prompt"]},
                                     {"role": "assistant", "content": obj["completion"]}]
    return "unknown", None


def check_messages(messages: Any, line: int, unit: str = "line") -> list[LineProblem]:
    """Structural checks of one example's messages; empty list when it is valid. `unit` names
    where it sits ("line" of a JSONL file, "row" of a spreadsheet)."""
    def problem(code: str, detail: str) -> LineProblem:
        return LineProblem(line, code, f"{unit} {line}: {detail}")

    if not isinstance(messages, list):
        return [problem("missing_messages_list", "'messages' must be a list of {role, content}")]
    if not messages:
        return [problem("empty_messages", "the messages list is empty")]
    problems: list[LineProblem] = []
    for i, message in enumerate(messages, start=1):
        where = f"message {i}"
        if not isinstance(message, dict):
            problems.append(problem("data_type", f"{where} is not an object"))
            continue
        if "role" not in message or "content" not in message:
            missing = "role" if "role" not in message else "content"
            problems.append(problem("message_missing_key", f"{where} has no '{missing}'"))
        extra = sorted(set(message) - ALLOWED_MESSAGE_KEYS)
        if extra:
            problems.append(problem("message_unrecognized_key",
                                    f"{where} has unrecognized key(s) {', '.join(extra)}"))
        role = message.get("role")
        if "role" in message and role not in ROLES:
            problems.append(problem("unrecognized_role",
                                    f"{where} has role {role!r}; use system, user or assistant"))
        if "content" in message:
            content = message.get("content")
            if not isinstance(content, str):
                problems.append(problem("missing_content", f"{where} ({role}) content is not text"))
            elif not content.strip():
                problems.append(problem("blank_content", f"{where} ({role}) content is blank"))
            elif len(content) > MAX_CONTENT_CHARS:
                problems.append(problem("content_too_large",
                                        f"{where} ({role}) has {len(content):,} characters "
                                        f"(limit {MAX_CONTENT_CHARS:,})"))
            elif bad := _REFUSED_CHARACTERS.search(content):
                char = bad.group()
                name = unicodedata.name(char, "control character")
                problems.append(problem("control_character",
                                        f"{where} ({role}) holds U+{ord(char):04X} ({name}) at character "
                                        f"{bad.start() + 1}: invisible, it can change how the text reads; "
                                        "remove it"))
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if "assistant" not in roles:
        problems.append(problem("example_missing_assistant_message", "no assistant message"))
    elif roles and roles[-1] != "assistant":
        problems.append(problem("not_ending_on_assistant",
                                f"the last turn is {roles[-1]!r}; end on an assistant answer"))
    return problems


def parse_jsonl(data: bytes, *, first_line: int = 1) -> ParseResult:
    """Parse raw bytes into per-line verdicts; never raises on bad content."""
    result = ParseResult()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # the newline that ends the last line does not start a blank one
    for offset, raw_bytes in enumerate(parts):
        line = first_line + offset
        raw_bytes = raw_bytes.rstrip(b"\r")
        if not raw_bytes.strip():
            result.blank += 1
            continue
        result.lines.append(parse_line(raw_bytes, line))
        fmt = result.lines[-1].source_format
        result.formats[fmt] = result.formats.get(fmt, 0) + 1
    return result


def parse_line(raw_bytes: bytes, line: int, unit: str = "line") -> ParsedLine:
    """One JSON line (or a Hugging Face row as JSON: unit "row") as a verdict."""
    if len(raw_bytes) > MAX_LINE_BYTES:
        preview = raw_bytes[:200].decode("utf-8", "replace")
        return ParsedLine(line, preview, None, "unknown", (LineProblem(
            line, "line_too_large",
            f"{unit} {line}: {len(raw_bytes):,} bytes (limit {MAX_LINE_BYTES:,}); split it up"),))
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw_bytes[exc.start]
        return ParsedLine(line, raw_bytes.decode("utf-8", "replace"), None, "unknown", (LineProblem(
            line, "not_utf8",
            f"{unit} {line}: byte 0x{bad:02x} at byte {exc.start + 1} is not UTF-8; save the file as UTF-8"),))
    try:
        obj = _strict_loads(text)
    except json.JSONDecodeError as exc:
        return ParsedLine(line, text, None, "unknown", (LineProblem(
            line, "invalid_json", f"{unit} {line}: invalid JSON at column {exc.colno}: {exc.msg}"),))
    except RecursionError:
        return ParsedLine(line, text[:200], None, "unknown", (LineProblem(
            line, "too_deep", f"{unit} {line}: JSON nested too deeply to be an example"),))
    except DuplicateKey as exc:
        return ParsedLine(line, text, None, "unknown", (LineProblem(
            line, "duplicate_key", f"{unit} {line}: the key {json.dumps(str(exc))} appears twice in one object; "
            "keep one (JSON readers would silently use the last)"),))
    except ValueError as exc:  # raised by _refuse_constant
        return ParsedLine(line, text, None, "unknown", (LineProblem(
            line, "non_standard_number",
            f"{unit} {line}: {exc} is not standard JSON; write a number or a string"),))
    if _has_lone_surrogate(obj):
        return ParsedLine(line, text, None, "unknown", (LineProblem(
            line, "lone_surrogate",
            f"{unit} {line}: a \\u escape (such as \\ud800) that is not a valid character; remove it"),))
    if not isinstance(obj, dict):
        return ParsedLine(line, text, None, "unknown", (LineProblem(
            line, "data_type", f"{unit} {line}: expected a JSON object, got {type(obj).__name__}"),))
    fmt, messages = convert(obj)
    if fmt == "unknown":
        return ParsedLine(line, text, None, fmt, (LineProblem(
            line, "missing_messages_list",
            f"{unit} {line}: no 'messages' list (nor Alpaca, ShareGPT or prompt/completion keys)"),))
    problems = check_messages(messages, line, unit)
    return ParsedLine(line, text, messages if not problems else None, fmt, tuple(problems))
