"""The one redaction of printed messages and published files (`datasets_scripts.redaction`)."""

from datasets_scripts.redaction import REDACTED, redact_local_paths, redact_secrets


def test_credentials_from_the_environment_and_token_shapes_are_redacted(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "my-own-hub-token-value")
    monkeypatch.setenv("OPENAI_API_KEY", "a-key-of-any-shape")
    text = (
        "401: token my-own-hub-token-value refused; key a-key-of-any-shape; "
        "also hf_abcdefghijklmnopqrstuvwxyz0123 and sk-proj-ABCDEFGHIJKLMNOP1234"
    )
    redacted = redact_secrets(text)
    assert "my-own-hub-token-value" not in redacted and "a-key-of-any-shape" not in redacted
    assert "hf_abcdefghij" not in redacted and "sk-proj-ABCD" not in redacted
    assert redacted.count(REDACTED) == 4 and redacted.startswith("401: token ")


def test_short_or_unset_values_redact_nothing_else(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "x")  # too short to be a credential: "x" must not vanish from every message
    assert redact_secrets("box x of 3") == "box x of 3"


def test_absolute_local_paths_are_cut_in_nested_reports():
    report = {
        "model": "/tmp/alice/runs/roc",
        "command": "python train.py --output_dir /tmp/alice/runs/roc --dataset_name_or_path data/mnre",
        "splits": [{"source": "/root/.cache/huggingface/mnre_train.txt"}],
        "url": "https://github.com/thecharm/MNRE/raw/main/x.txt",
        "relative": "../data/mnre",
        "label": "/per/org/member_of",
    }
    assert redact_local_paths(report) == {
        "model": ".../runs/roc",
        "command": "python train.py --output_dir .../runs/roc --dataset_name_or_path data/mnre",
        "splits": [{"source": ".../huggingface/mnre_train.txt"}],
        "url": "https://github.com/thecharm/MNRE/raw/main/x.txt",
        "relative": "../data/mnre",
        "label": "/per/org/member_of",  # not a path here: relation labels are written like paths
    }
