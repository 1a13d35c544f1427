"""Every import error code, table-driven, with 1-based line numbers."""

import json

import pytest

from core.curation import datasets, importing, validation

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

BAD_LINES = [
    ("[1, 2]", "data_type"),
    ('{"foo": 1}', "missing_messages_list"),
    ('{"messages": "nope"}', "missing_messages_list"),
    ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}', "message_missing_key"),
    ('{"messages": [{"role": "user", "content": "a", "extra": 1}, {"role": "assistant", "content": "x"}]}',
     "message_unrecognized_key"),
    ('{"messages": [{"role": "boss", "content": "a"}, {"role": "assistant", "content": "x"}]}', "unrecognized_role"),
    ('{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}', "missing_content"),
    ('{"messages": [{"role": "user", "content": "only a question"}]}', "example_missing_assistant_message"),
    ('{"messages": [', "invalid_json"),
    ('{"messages": []}', "empty_messages"),
    ('{"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "x"}]}', "blank_content"),
    ('{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "then?"}]}',
     "not_ending_on_assistant"),
    (json.dumps({"messages": [{"role": "user", "content": "a" * (validation.MAX_CONTENT_CHARS + 1)},
                              {"role": "assistant", "content": "x"}]}), "content_too_large"),
    # Issue 23: a second "messages" key would silently win; invisible controls change how text reads.
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}], "messages": []}',
     "duplicate_key"),
    ('{"messages": [{"role": "user", "content": "a", "content": "b"}, {"role": "assistant", "content": "x"}]}',
     "duplicate_key"),
    ('{"messages": [{"role": "user", "content": "pay \u202eto"}, {"role": "assistant", "content": "x"}]}',
     "control_character"),
    ('{"messages": [{"role": "user", "content": "a\\u0000b"}, {"role": "assistant", "content": "x"}]}',
     "control_character"),
]


@pytest.mark.parametrize(("line", "code"), BAD_LINES)
def test_bad_line_gets_its_code_and_line_number(line, code):
    data = (json.dumps(GOOD) + "\n" + line + "\n").encode()
    result = validation.parse_jsonl(data)
    bad = result.lines[1]
    assert not bad.ok
    assert code in [p.code for p in bad.problems]
    assert all(p.line == 2 and p.message.startswith("line 2:") for p in bad.problems)
    assert result.lines[0].ok


def test_not_utf8_names_the_byte():
    data = json.dumps(GOOD).encode() + b"\n" + b'{"messages": "caf\xe9"}\n'
    problem = validation.parse_jsonl(data).lines[1].problems[0]
    assert problem.code == "not_utf8"
    assert "0xe9" in problem.message and "line 2" in problem.message


def test_bom_crlf_and_blank_lines_are_accepted():
    line = json.dumps(GOOD)
    data = b"\xef\xbb\xbf" + line.encode() + b"\r\n\r\n   \r\n" + line.replace("Hi", "Hey").encode() + b"\r\n"
    result = validation.parse_jsonl(data)
    assert [p.ok for p in result.lines] == [True, True]
    assert result.blank == 2
    assert [p.line for p in result.lines] == [1, 4]


@pytest.mark.parametrize(("obj", "fmt", "first_role"), [
    ({"instruction": "Sum", "input": "2+2", "output": "4"}, "alpaca", "user"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}, "sharegpt", "user"),
    ({"prompt": "p", "completion": "c"}, "prompt_completion", "user"),
    (GOOD, "openai", "user"),
])
def test_formats_are_detected_and_converted(obj, fmt, first_role):
    line = validation.parse_jsonl(json.dumps(obj).encode()).lines[0]
    assert line.ok and line.source_format == fmt
    assert line.messages[0]["role"] == first_role and line.messages[-1]["role"] == "assistant"


def test_import_reports_duplicates_and_quarantines_errors(db):
    dataset = datasets.create_dataset(db, "d")
    data = "\n".join([json.dumps(GOOD), json.dumps(GOOD), "{oops", ""]).encode()
    report = importing.import_jsonl(db, dataset, data)
    assert (report.imported, report.duplicates, report.quarantined) == (1, 1, 1)
    assert [(e.line, e.code) for e in report.errors] == [(3, "invalid_json")]
    assert [(w.line, w.code) for w in report.warnings] == [(2, "duplicate_in_file")]
    again = importing.import_jsonl(db, dataset, json.dumps(GOOD).encode())
    assert again.imported == 0 and again.warnings[0].code == "duplicate_in_dataset"


def test_too_long_warning_counts_with_the_models_own_template(db, model_dir):
    from core.models import registry, templating

    dataset = datasets.create_dataset(db, "long")
    long = {"messages": [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]}
    report = importing.import_jsonl(db, dataset, json.dumps(long).encode(), max_length=100,
                                   count_tokens=templating.token_counter(registry.DEFAULT_MODEL))
    assert report.imported == 1
    warning = report.warnings[0]
    assert warning.code == "too_long"
    tokens = templating.count_tokens(registry.DEFAULT_MODEL, long["messages"])
    assert f"{tokens:,} tokens" in warning.message and tokens > 300


def test_huge_line_binary_file_and_oversized_upload(db):
    dataset = datasets.create_dataset(db, "hostile")
    ten_mb_line = json.dumps({"messages": [{"role": "user", "content": "x" * 10_000_000},
                                           {"role": "assistant", "content": "y"}]}).encode()
    report = importing.import_jsonl(db, dataset, json.dumps(GOOD).encode() + b"\n" + ten_mb_line + b"\n")
    assert report.imported == 1 and [e.code for e in report.errors] == ["line_too_large"]
    stored = importing.list_quarantine(db, dataset.id)[0]["raw_text"]
    assert len(stored) < 1000  # a preview, not the 10 MB
    binary = bytes(range(256)) * 64
    report = importing.import_jsonl(db, dataset, binary)
    assert report.imported == 0 and report.quarantined >= 1
    assert {e.code for e in report.errors} <= {"not_utf8", "invalid_json", "data_type", "missing_messages_list"}
    with pytest.raises(datasets.DatasetError, match="limit is 50 MB"):
        importing.import_jsonl(db, dataset, b" " * (importing.MAX_IMPORT_BYTES + 1))
    assert db.table("examples").count == 1  # nothing already stored was lost


@pytest.mark.parametrize(("line", "message"), [
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}], "messages": []}',
     'line 1: the key "messages" appears twice in one object; keep one (JSON readers would silently use the last)'),
    ('{"messages": [{"role": "user", "content": "pay \u202eto"}, {"role": "assistant", "content": "x"}]}',
     "line 1: message 1 (user) holds U+202E (RIGHT-TO-LEFT OVERRIDE) at character 5: invisible, it can change "
     "how the text reads; remove it"),
    ('{"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "x\\u0000"}]}',
     "line 1: message 2 (assistant) holds U+0000 (control character) at character 2: invisible, it can change "
     "how the text reads; remove it"),
])
def test_duplicate_keys_and_invisible_controls_are_refused_with_the_place(line, message):
    (parsed,) = validation.parse_jsonl(line.encode()).lines
    assert [p.message for p in parsed.problems] == [message]


def test_right_to_left_text_with_its_marks_is_accepted():
    text = "\u05e9\u05dc\u05d5\u05dd \u200fOK\u200e"  # Hebrew with RLM/LRM marks, no override
    assert validation.check_messages([{"role": "user", "content": text}, {"role": "assistant", "content": "x"}], 1) == []
