"""Generate relation descriptions with an LLM, for labels that no reviewed bank covers.

ROC (https://arxiv.org/abs/2509.21151) matches entity pairs against embedded relation descriptions; the paper writes
them with an LLM from a few-shot prompt. This script does the same through the `openai` package's Chat Completions
API (any OpenAI-compatible server via `--base_url`), one request per label, and writes a `{label: description}` JSON
bank that `datasets_scripts.relation_bank.load_relation_bank` reads.

- The API key comes from the `OPENAI_API_KEY` environment variable only; it is never printed or written.
- Answers are cached on disk keyed by (model, prompt, label), so a rerun makes no requests.
- An existing output file is merged, never overwritten: its (reviewed) entries are kept unless `--force` is given;
  new labels are appended.
- Generated text is a draft: review it before training, as it defines what the model retrieves.

Example:

    python -m datasets_scripts.describe_relations --labels_file rel2id.json --seed_bank more \\
        --output more_relation_bank.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets_scripts.redaction import redact_secrets
from datasets_scripts.relation_bank import load_relation_bank
from roc_mre.console import command_name


__all__ = [
    "DEFAULT_MODEL",
    "FEW_SHOT_LABELS",
    "DescriptionCache",
    "build_messages",
    "cache_key",
    "main",
    "parse_args",
    "parse_description",
    "read_labels_file",
]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_DATASET_DESCRIPTION = "multimodal relation extraction on social-media posts made of a short text and an image"
# Three shots that cover person-person, person-organization and event-location pairs and show the expected form.
FEW_SHOT_LABELS = ("/per/per/couple", "/per/org/member_of", "/misc/loc/held_on")

INSTRUCTIONS = """You write descriptions of relation labels for {dataset_description}.
The label names a relation between a subject (the head entity) and an object (the tail entity); its path usually \
reads /subject_type/object_type/relation, where per = person, org = organization, loc = location and misc = \
anything else (works, events, awards, nationalities, ...).
A small sentence encoder embeds each description and matches entity pairs against it, so write 1 to 3 sentences \
(about 25 to 60 words) that:
- start with a short readable name of the relation, then say what it means;
- say which entity type the subject and the object must have;
- end with a short invented example introduced by "e.g.";
- make the relation clearly distinguishable from similar relations.
Answer with a JSON object of the form {{"description": "..."}} and nothing else."""


class DescribeError(RuntimeError):
    """A failure worth a one-line message rather than a traceback."""


def read_labels_file(path: str | Path) -> list[str]:
    """Read a `rel2id.json` (a JSON object label -> integer id) and return its labels ordered by id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DescribeError(f"Cannot read labels file {path}: {err}") from err
    if not isinstance(data, dict) or not data:
        raise DescribeError(f"Labels file {path} must be a non-empty JSON object {{label: id}}")
    bad = {label: i for label, i in data.items() if not isinstance(i, int) or isinstance(i, bool)}
    if bad:
        raise DescribeError(f"Labels file {path} must map labels to integer ids; bad entries: {bad}")
    if len(set(data.values())) != len(data):
        raise DescribeError(f"Labels file {path} gives the same id to several labels: {data}")
    return sorted(data, key=data.__getitem__)


def build_messages(
    label: str, examples: dict[str, str], dataset_description: str = DEFAULT_DATASET_DESCRIPTION
) -> list[dict[str, str]]:
    """The few-shot chat prompt for one label: instructions, example label -> JSON answer turns, then the label."""
    messages = [{"role": "system", "content": INSTRUCTIONS.format(dataset_description=dataset_description)}]
    for example_label, description in examples.items():
        messages.append({"role": "user", "content": f"Label: {example_label}"})
        messages.append({"role": "assistant", "content": json.dumps({"description": description})})
    messages.append({"role": "user", "content": f"Label: {label}"})
    return messages


def cache_key(model: str, messages: list[dict[str, str]], label: str) -> str:
    """A stable key over (model, prompt, label): changing any of them asks the LLM again."""
    payload = json.dumps({"model": model, "messages": messages, "label": label}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# A relation description is a sentence or two; the relation encoder reads 64 tokens of it. An answer far longer is
# a runaway generation (or a server answering something else), not a description: treated as no answer.
MAX_DESCRIPTION_CHARS = 1000


def _answer_value(content: str | None) -> str | None:
    """The raw description string of the model's JSON answer (its `description`, or its only value), uncapped."""
    if not content or not content.strip():
        return None
    text = content.strip()
    if text.startswith("```"):  # some OpenAI-compatible servers ignore response_format and fence their JSON
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("description")
    if value is None and len(data) == 1:
        value = next(iter(data.values()))
    return value if isinstance(value, str) and value.strip() else None


def parse_description(content: str | None) -> str | None:
    """Extract the description from the model's JSON answer, or None when it gave none (or a runaway one, longer
    than `MAX_DESCRIPTION_CHARS`)."""
    value = _answer_value(content)
    if value is None or len(value) > 4 * MAX_DESCRIPTION_CHARS:
        return None
    description = " ".join(value.split())
    return description if len(description) <= MAX_DESCRIPTION_CHARS else None


def why_no_description(content: str | None) -> str:
    """The reason `parse_description` found none in `content`: an over-long description is named as such (it was
    reported as "no description")."""
    value = _answer_value(content)
    if value is not None and len(" ".join(value.split())) > MAX_DESCRIPTION_CHARS:
        return (
            f"the description is {len(' '.join(value.split()))} characters, over the cap of {MAX_DESCRIPTION_CHARS} "
            f"(a runaway answer): {value!r:.120}"
        )
    return f"no description in the answer {content!r:.200}"


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    # A crash mid-write must not truncate a reviewed bank.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DescriptionCache:
    """One small JSON file per (model, prompt, label) answer; only non-empty descriptions are stored."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir).expanduser()

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        description = entry.get("description") if isinstance(entry, dict) else None
        return description if isinstance(description, str) and description.strip() else None

    def put(self, key: str, model: str, label: str, description: str) -> None:
        _write_json_atomic(self._path(key), {"model": model, "label": label, "description": description})


@dataclass
class GenerationResult:
    descriptions: dict[str, str] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _make_client(base_url: str | None, timeout: float) -> Any:
    api_key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not api_key:
        raise DescribeError(
            "OPENAI_API_KEY is not set. Export it in the environment (it is never accepted as a flag); "
            "for a local OpenAI-compatible server any non-empty value works."
        )
    try:
        from openai import OpenAI
    except ImportError as err:
        raise DescribeError("describe_relations needs the `openai` package: pip install 'roc-mre[data]'") from err
    return OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=2)


def _ask(client: Any, model: str, messages: list[dict[str, str]]) -> tuple[str | None, str]:
    """One Chat Completions request; returns (description or None, reason when None)."""
    import openai

    try:
        response = client.chat.completions.create(
            model=model, messages=messages, response_format={"type": "json_object"}
        )
    except openai.APIError as err:
        # The SDK's messages carry the status and server text: a server that echoes the request's key is redacted.
        return None, f"{type(err).__name__}: {redact_secrets(err)}"  # a server may echo the key back
    content = response.choices[0].message.content if response.choices else None
    description = parse_description(content)
    return description, "" if description else why_no_description(content)


def generate_descriptions(
    labels: list[str],
    examples: dict[str, str],
    model: str,
    cache: DescriptionCache,
    client_factory: Any,
    dataset_description: str = DEFAULT_DATASET_DESCRIPTION,
) -> GenerationResult:
    """Describe each label from the cache or the LLM, retrying the labels that got no description once."""
    result = GenerationResult()
    prompts = {label: build_messages(label, examples, dataset_description) for label in labels}
    keys = {label: cache_key(model, prompts[label], label) for label in labels}
    pending = []
    for label in labels:
        cached = cache.get(keys[label])
        if cached is not None:
            result.descriptions[label] = cached
            result.cached.append(label)
        else:
            pending.append(label)
    if not pending:
        return result
    client = client_factory()  # only now: a fully cached rerun needs neither a key nor a network
    for _attempt in range(2):
        failed: dict[str, str] = {}
        for label in pending:
            description, reason = _ask(client, model, prompts[label])
            if description is None:
                failed[label] = reason
                continue
            cache.put(keys[label], model, label, description)
            result.descriptions[label] = description
            result.generated.append(label)
        pending = list(failed)
        result.failures = failed
        if not pending:
            break
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command_name("python -m datasets_scripts.describe_relations"),
        description=(
            "Write LLM-generated relation descriptions ({label: description} JSON) for ROC. "
            "The API key is read from OPENAI_API_KEY only. Review the output before use."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", nargs="+", help="Relation labels to describe, e.g. /per/per/couple None.")
    source.add_argument(
        "--labels_file", help="A rel2id.json (JSON object label -> id); labels are described in id order."
    )
    parser.add_argument(
        "--output",
        required=True,
        help="Bank JSON to write. If it exists, its entries are kept (unless --force) and new labels are appended.",
    )
    parser.add_argument(
        "--seed_bank",
        default=None,
        help="A reviewed bank ('mnre', 'more' or a JSON path) whose descriptions are copied for requested labels "
        "that the output lacks, instead of generating them.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"Chat model name (default: {DEFAULT_MODEL}).")
    parser.add_argument(
        "--base_url",
        default=None,
        help="OpenAI-compatible API base URL, e.g. http://127.0.0.1:8000/v1 (default: OPENAI_BASE_URL or OpenAI).",
    )
    parser.add_argument(
        "--dataset_description",
        default=DEFAULT_DATASET_DESCRIPTION,
        help="One phrase on the task and data, inserted into the prompt (default: %(default)r).",
    )
    parser.add_argument(
        "--cache_dir",
        default=None,
        help="Where answers are cached by (model, prompt, label) "
        "(default: $XDG_CACHE_HOME or ~/.cache, then roc-mre/describe_relations).",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Regenerate labels that the output (or --seed_bank) already describes and replace those entries.",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="Seconds to wait for each API request (default: 60)."
    )
    args = parser.parse_args(argv)
    if args.labels is not None:
        labels = [label.strip() for label in args.labels]
        if any(not label for label in labels):
            parser.error("--labels must not contain empty labels")
        if len(set(labels)) != len(labels):
            parser.error(f"--labels has duplicates: {sorted({x for x in labels if labels.count(x) > 1})}")
        args.labels = labels
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.cache_dir is None:
        cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        args.cache_dir = os.path.join(cache_home, "roc-mre", "describe_relations")
    return args


def run(args: argparse.Namespace) -> dict[str, str]:
    """Merge kept, seeded and generated descriptions into `args.output`; returns the bank written."""
    labels = args.labels if args.labels is not None else read_labels_file(args.labels_file)
    output = Path(args.output)
    try:
        existing = load_relation_bank(str(output)) if output.exists() else {}
        seed = load_relation_bank(args.seed_bank) if args.seed_bank else {}
        mnre = load_relation_bank("mnre")
    except ValueError as err:
        raise DescribeError(str(err)) from err

    examples = {label: mnre[label] for label in FEW_SHOT_LABELS}
    bank = dict(existing)
    seeded = [label for label in labels if label not in bank and label in seed]
    if not args.force:
        bank.update({label: seed[label] for label in seeded})
        kept = [label for label in labels if label in existing]
        to_describe = [label for label in labels if label not in bank]
    else:
        kept, seeded = [], []
        to_describe = list(labels)

    result = generate_descriptions(
        to_describe,
        examples,
        args.model,
        DescriptionCache(args.cache_dir),
        lambda: _make_client(args.base_url, args.timeout),
        args.dataset_description,
    )
    if result.failures:
        details = "\n".join(f"  {label}: {reason}" for label, reason in result.failures.items())
        raise DescribeError(
            f"No description for {len(result.failures)} label(s) after one retry: {list(result.failures)}\n"
            f"{details}\nNothing was written to {output}; the descriptions obtained so far are cached."
        )
    replaced = [label for label in to_describe if label in existing]
    bank.update(result.descriptions)  # replaced entries keep their position, new ones are appended
    _write_json_atomic(output, bank)

    print(
        f"Wrote {len(bank)} descriptions to {output}: {len(result.generated)} generated, {len(result.cached)} from "
        f"cache, {len(kept)} kept from the existing file, {len(seeded)} copied from the seed bank"
        + (f", {len(replaced)} replaced (--force)." if args.force else ".")
    )
    if result.generated or result.cached:
        print(
            "Review every generated description before use (meaning, subject/object types, example): they define "
            "what ROC retrieves. Reviewed entries are kept on reruns unless --force is given."
        )
    return bank


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DescribeError as err:
        print(f"error: {redact_secrets(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
