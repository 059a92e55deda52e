"""describe_relations against a local OpenAI-compatible stub server (loopback only, no network)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datasets_scripts.describe_relations import FEW_SHOT_LABELS, main, read_labels_file
from datasets_scripts.relation_bank import load_relation_bank


pytest.importorskip("openai")

SECRET = "sk-test-secret-123"


class StubLLM:
    """Answers /v1/chat/completions with `{"description": ...}` for the label in the last user turn."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.authorizations: list[str] = []
        self.empty_labels: set[str] = set()
        self.echo_key_in_errors = False  # a server that repeats the request's key in its error text
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                with stub.lock:
                    stub.requests.append(body)
                    stub.authorizations.append(self.headers.get("Authorization", ""))
                if stub.echo_key_in_errors:
                    error = {"error": {"message": f"invalid key {self.headers.get('Authorization')}", "type": "auth"}}
                    payload = json.dumps(error).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                label = body["messages"][-1]["content"].removeprefix("Label: ")
                content = "" if label in stub.empty_labels else json.dumps({"description": f"Generated for {label}."})
                payload = json.dumps(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: a random free port
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def labels_asked(self) -> list[str]:
        return [r["messages"][-1]["content"].removeprefix("Label: ") for r in self.requests]


@pytest.fixture
def stub(monkeypatch):
    server = StubLLM()
    server.thread.start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    yield server
    server.server.shutdown()
    server.server.server_close()


def _run(tmp_path, *extra) -> int:
    return main(["--output", str(tmp_path / "bank.json"), "--cache_dir", str(tmp_path / "cache"), *extra])


def _assert_secret_absent(tmp_path: Path, captured) -> None:
    assert SECRET not in captured.out and SECRET not in captured.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8"), path


def test_generates_every_label_with_few_shot_prompt(stub, tmp_path, capsys):
    labels = ["/per/per/self", "/per/org/founder_of", "None"]
    assert _run(tmp_path, "--labels", *labels, "--base_url", stub.base_url) == 0
    bank = load_relation_bank(str(tmp_path / "bank.json"))
    assert list(bank) == labels
    assert bank["/per/org/founder_of"] == "Generated for /per/org/founder_of."
    assert sorted(stub.labels_asked()) == sorted(labels)
    assert all(auth == f"Bearer {SECRET}" for auth in stub.authorizations)

    prompt = json.dumps(stub.requests[0]["messages"])
    mnre = load_relation_bank("mnre")
    for example in FEW_SHOT_LABELS:
        assert json.dumps(example)[1:-1] in prompt and json.dumps(mnre[example])[1:-1] in prompt
    assert stub.requests[0]["messages"][-1]["content"] == f"Label: {stub.labels_asked()[0]}"

    captured = capsys.readouterr()
    assert "3 generated" in captured.out and "Review" in captured.out
    _assert_secret_absent(tmp_path, captured)


def test_labels_file_is_ordered_by_id(stub, tmp_path):
    rel2id = tmp_path / "rel2id.json"
    rel2id.write_text(json.dumps({"b": 1, "c": 2, "a": 0}), encoding="utf-8")
    assert read_labels_file(rel2id) == ["a", "b", "c"]
    assert _run(tmp_path, "--labels_file", str(rel2id)) == 0  # base URL from OPENAI_BASE_URL
    assert list(load_relation_bank(str(tmp_path / "bank.json"))) == ["a", "b", "c"]


def test_second_run_hits_the_cache(stub, tmp_path, capsys):
    assert _run(tmp_path, "--labels", "x", "y") == 0
    (tmp_path / "bank.json").unlink()
    n_requests = len(stub.requests)
    assert _run(tmp_path, "--labels", "x", "y") == 0
    assert len(stub.requests) == n_requests
    assert "2 from cache" in capsys.readouterr().out
    assert list(load_relation_bank(str(tmp_path / "bank.json"))) == ["x", "y"]


def test_reviewed_entries_kept_without_force_replaced_with_it(stub, tmp_path, capsys):
    output = tmp_path / "bank.json"
    output.write_text(json.dumps({"x": "Reviewed by hand.", "keep": "Untouched."}), encoding="utf-8")

    assert _run(tmp_path, "--labels", "x", "y") == 0
    assert load_relation_bank(str(output)) == {
        "x": "Reviewed by hand.",
        "keep": "Untouched.",
        "y": "Generated for y.",
    }
    assert stub.labels_asked() == ["y"]
    assert "1 kept" in capsys.readouterr().out

    assert _run(tmp_path, "--labels", "x", "y", "--force") == 0
    bank = load_relation_bank(str(output))
    assert list(bank) == ["x", "keep", "y"]  # replaced in place, unrelated entries untouched
    assert bank["x"] == "Generated for x." and bank["keep"] == "Untouched."


def test_seed_bank_copies_reviewed_descriptions(stub, tmp_path):
    assert _run(tmp_path, "--labels", "none", "/per/org/founder_of", "--seed_bank", "more") == 0
    bank = load_relation_bank(str(tmp_path / "bank.json"))
    assert bank["none"] == load_relation_bank("more")["none"]
    assert stub.labels_asked() == ["/per/org/founder_of"]


def test_empty_answer_fails_naming_the_label(stub, tmp_path, capsys):
    stub.empty_labels = {"/per/per/mystery"}
    assert _run(tmp_path, "--labels", "fine", "/per/per/mystery") == 1
    captured = capsys.readouterr()
    assert "after one retry: ['/per/per/mystery']" in captured.err
    assert stub.labels_asked().count("/per/per/mystery") == 2  # retried once
    assert not (tmp_path / "bank.json").exists()
    _assert_secret_absent(tmp_path, captured)


def test_missing_api_key_is_a_clear_error(stub, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY")
    assert _run(tmp_path, "--labels", "x") == 1
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert stub.requests == []


def test_api_key_is_not_a_flag(tmp_path):
    with pytest.raises(SystemExit):
        _run(tmp_path, "--labels", "x", "--api_key", SECRET)


def test_a_key_echoed_in_a_server_error_is_never_printed(stub, tmp_path, capsys):
    stub.echo_key_in_errors = True
    _run(tmp_path, "--labels", "/per/per/peer")
    captured = capsys.readouterr()
    assert "AuthenticationError" in captured.out + captured.err, captured
    assert "[REDACTED]" in captured.out + captured.err
    _assert_secret_absent(tmp_path, captured)


def test_a_runaway_answer_is_no_description():
    from datasets_scripts.describe_relations import MAX_DESCRIPTION_CHARS, parse_description, why_no_description

    assert parse_description('{"description": "The subject founded the object."}') == "The subject founded the object."
    assert parse_description(json.dumps({"description": "word " * 400_000})) is None  # 2 MB
    assert parse_description(json.dumps({"description": "x" * (MAX_DESCRIPTION_CHARS + 1)})) is None
    over = why_no_description(json.dumps({"description": "x" * (MAX_DESCRIPTION_CHARS + 1)}))
    assert f"{MAX_DESCRIPTION_CHARS + 1} characters, over the cap of {MAX_DESCRIPTION_CHARS}" in over
    assert why_no_description('{"answer": 1}').startswith("no description in the answer")
