"""Load a staged model folder the way a user of the Hub would, offline, and print what it predicts.

    python -m roc_mre.hub.verify FOLDER SPEC.json

`push_to_hub.py` runs this in a fresh interpreter with `HF_HUB_OFFLINE=1`, an empty `HF_HOME`, no credentials and
the project's model package blocked, so every class must come from the folder's remote code. `SPEC.json` says what
to check: the entity markers, the relation bank file, the pipeline task, an example (and optionally its image), and
the card's usage snippet, which is run as a script with `hf_hub_download` answering from the folder. The result is
one JSON line after `RESULT_MARKER` on stdout; a failed check exits with status 3 and a message on stderr.
"""

import contextlib
import io
import json
import os
import runpy
import sys
import tempfile


RESULT_MARKER = "ROC_VERIFY_RESULT "


def fail(message: str) -> None:
    print(f"verification failed: {message}", file=sys.stderr)
    raise SystemExit(3)


def load_and_predict(folder: str, spec: dict) -> dict:
    """AutoConfig / AutoModel / AutoProcessor / pipeline from the folder, and their outputs on the spec's example."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline

    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    missing = [m for m in spec["markers"] if m not in processor.tokenizer.get_vocab()]
    if missing:
        fail(f"the tokenizer lacks the entity markers {missing}")
    with open(os.path.join(folder, spec["bank_file"]), encoding="utf-8") as f:
        bank = json.load(f)
    if bank["labels"] != model.config.relation_labels or bank["descriptions"] != model.config.relation_bank:
        fail(f"{spec['bank_file']} differs from the relation bank of config.json")
    if model.relation_model is not None and model.relation_tokenizer is None:
        fail("no relation tokenizer was loaded from relation_tokenizer/: the model cannot encode its relations")

    example = dict(spec["example"])
    if spec.get("image"):
        from PIL import Image

        example["image"] = Image.open(spec["image"]).convert("RGB")
    image = example.get("image") if model.vision_model is not None else None
    inputs = processor(example["tokens"], example["subject"], example["object"], images=image)
    with torch.no_grad():
        logits = model(**inputs).logits
    # float32: the model as trained, so its predictions compare with the run's recorded ones (1e-3)
    pipe = pipeline(spec["task"], model=folder, trust_remote_code=True, device=-1, precision="float32")
    return {
        "config_class": type(config).__name__,
        "model_module": type(model).__module__,
        "pipeline_class": type(pipe).__name__,
        "labels": model.config.relation_labels,
        "logits": logits.tolist(),
        "predictions": pipe(example, top_k=spec["top_k"]),
    }


def run_card_snippet(folder: str, snippet: str) -> dict:
    """Run the card's "How to use" code as a script, `hf_hub_download` answering from `folder`; its output and the
    labels of the `pipe` it builds."""
    import huggingface_hub

    huggingface_hub.hf_hub_download = lambda repo_id, filename, **kwargs: os.path.join(repo_id, filename)
    with tempfile.TemporaryDirectory(prefix="roc-card-snippet-") as workdir:
        script = os.path.join(workdir, "card_snippet.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(snippet)
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            namespace = runpy.run_path(script, run_name="__card_snippet__")
    config = namespace["pipe"].model.config
    return {
        "snippet_output": output.getvalue(),
        "snippet_labels": config.relation_labels,
        "snippet_score_offsets": config.relation_score_offsets,
    }


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m roc_mre.hub.verify FOLDER SPEC.json")
    folder, spec_path = argv
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    sys.modules["modeling_roc"] = None  # the project's copy must not stand in for the folder's remote code
    result = load_and_predict(folder, spec)
    result.update(run_card_snippet(folder, spec["snippet"]))
    print(RESULT_MARKER + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
