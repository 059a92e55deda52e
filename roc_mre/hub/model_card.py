"""Model card (`README.md`) and relation-bank file of a published ROC model, built only from the run's own records.

Nothing in the card is typed by hand: the metrics come from the run's `eval_results.json` (also written as
`model-index` metadata, so the Hub shows them), the training command from `eval_results.json` and the resolved flags
from `training_args.json`, the NER backend from the dataset folder's `build_report.json` (or "unknown"), and the
labels and descriptions from `config.json`. `push_to_hub.py` uses it; it is not remote code (`save_pretrained` never
copies it next to the weights).
"""

import json
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from datasets_scripts.mnre import CITATION as MNRE_CITATION
from datasets_scripts.more import CITATION as MORE_CITATION
from modeling_roc.card_roc import ROC_CITATION, escape_cell
from modeling_roc.configuration_roc import FETCHED_ENCODERS
from modeling_roc.pipeline_roc import TASK
from roc_mre.hub import DEFAULT_LICENSE


RELATION_BANK_FILE = "relation_bank.json"
TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")
LICENSE_TEXT = {
    "apache-2.0": "The weights and code are released under Apache-2.0, like the project and its default encoders "
    "(all-MiniLM-L6-v2, BERT).",
}
DATA_LICENSE_TEXT = (
    "They were trained on MNRE / MORE posts, whose releases state no license (see the dataset card): check the "
    "dataset's terms before reuse beyond research."
)
ENTITY_MARKERS_TEXT = "`<subj>` `</subj>` `<obj>` `</obj>`"
# The Hub only knows the pipeline tags of huggingface.js (`PIPELINE_TYPES`); huggingface_hub does not check them
# locally. None fits pair-level relation extraction: "text-classification" / "zero-shot-classification" would put
# an inference widget on the page that sends inputs this model cannot read. "other" is an existing tag that claims
# nothing and stops the Hub from guessing one from `config.json`.
PIPELINE_TAG = "other"
TASK_TYPE = "relation-extraction"
TASK_NAME = "Multimodal relation extraction"
# (eval_results.json key, model-index metric name, Hub metric id, metric config); values stay in eval_results.json's
# unit: percent. The Hub's metric ids (accuracy, precision, recall, f1) with the averaging as the config.
METRICS = (
    ("accuracy", "Accuracy (%)", "accuracy", None),
    ("precision", "Micro precision (%)", "precision", "micro"),
    ("recall", "Micro recall (%)", "recall", "micro"),
    ("f1", "Micro F1 (%)", "f1", "micro"),
    # the None-inclusive family (ROC's own MNRE table); absent from results written before it was recorded
    ("weighted_precision", "Weighted precision, None included (%)", "precision", "weighted"),
    ("weighted_recall", "Weighted recall, None included (%)", "recall", "weighted"),
    ("weighted_f1", "Weighted F1, None included (%)", "f1", "weighted"),
)
# Encoders known under a project name whose weights are a copy of a Hub model (for the card's `base_model`).
EMBEDDED_BASE_MODELS = {"embedded:all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2", **FETCHED_ENCODERS}
# A relation the usage snippet adds to show retrieval's promise (new relations, no retraining).
NEW_RELATION = ("/org/per/founded_by", "The subject is an organization founded by the object, a person.")
# The score offset the snippet gives the new relation, and where the value comes from: the unseen-relation benchmark
# (benchmarks/results/unseen_relations_minilm_2ep_zeroshot_offsets.json: 0.125 was best on other folds, zero shots).
NEW_RELATION_OFFSET = 0.125
EXAMPLE = {
    "tokens": "Rafael Nadal gets engaged to Mery Perello".split(),
    "subject": {"start": 0, "end": 2, "type": "PERSON"},
    "object": {"start": 5, "end": 7, "type": "PERSON"},
}
# Flags of train.py worth showing in the card (all of them are in training_args.json).
KEY_FLAGS = (
    "text_encoder",
    "relation_encoder",
    "vision_encoder",
    "use_images",
    "use_captions",
    "caption_dropout",
    "caption_mode",
    "num_fusion_layers",
    "pair_embed_dim",
    "loss_mode",
    "head",
    "relation_source",
    "freeze_relation_encoder",
    "temperature",
    "fixed_temperature",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "head_learning_rate",
    "warmup_ratio",
    "weight_decay",
    "none_weight",
    "max_length",
    "max_train_samples",
    "mixed_precision",
    "seed",
)


def relation_labels(config: dict) -> list[str]:
    """Labels in id order: `id2label` decides (the JSON of a saved config sorts the bank's keys)."""
    id2label = config.get("id2label") or {}
    labels = [id2label[key] for key in sorted(id2label, key=int)]
    bank = config.get("relation_bank") or {}
    if not bank or sorted(labels) != sorted(bank):
        raise ValueError(
            f"config.json: `id2label` labels {labels} and `relation_bank` labels {sorted(bank)} differ; "
            "is this a ROC model folder?"
        )
    return labels


def relation_bank_payload(config: dict) -> dict:
    """`relation_bank.json`: the labels in id order and label -> description, usable without the model."""
    labels = relation_labels(config)
    return {"labels": labels, "descriptions": {label: config["relation_bank"][label] for label in labels}}


def can_add_relations(config: dict) -> bool:
    """Only a retrieval head over text (descriptions or label names) can score relations it was not trained on."""
    return config.get("head", "retrieval") == "retrieval" and config.get("relation_source") != "learned"


def base_model_id(text_encoder: str | None) -> str | None:
    """The Hub id of the text encoder, when it is one (a local folder says nothing to a Hub reader)."""
    if not text_encoder:
        return None
    if text_encoder in EMBEDDED_BASE_MODELS:
        return EMBEDDED_BASE_MODELS[text_encoder]
    if text_encoder.startswith(("/", ".", "~")) or ":" in text_encoder or "\\" in text_encoder:
        return None
    return text_encoder if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text_encoder) else None


def hub_dataset_type(dataset: str | None) -> str | None:
    """The card's `dataset.type`: a Hub id as it is; a local folder (its path means nothing on the Hub and may name a
    home folder) by its dataset family, `mnre` or `more`, else `custom`."""
    if not dataset:
        return None
    if re.fullmatch(r"[\w.-]+/[\w.-]+", dataset) and not Path(dataset).exists():
        return dataset
    name = Path(dataset).name.lower()
    return "mnre" if "mnre" in name else "more" if "more" in name else "custom"


def eval_results_to_model_index(
    eval_results: dict, dataset_type: str, dataset_name: str, dataset_config: str | None = None
) -> list[EvalResult]:
    """One `EvalResult` per split and metric, values copied from `eval_results.json` (percent)."""
    results = []
    for split, record in eval_results["splits"].items():
        metrics = record["metrics"]
        for key, name, metric_type, metric_config in METRICS:
            if key not in metrics:
                continue
            results.append(
                EvalResult(
                    task_type=TASK_TYPE,
                    task_name=TASK_NAME,
                    dataset_type=dataset_type,
                    dataset_name=dataset_name,
                    dataset_config=dataset_config,
                    dataset_split=split,
                    metric_type=metric_type,
                    metric_name=name,
                    metric_config=metric_config,
                    metric_value=metrics[key],
                )
            )
    return results


def usage_snippet(repo_id: str, config: dict) -> str:
    """Python that loads the published model and runs it; `push_to_hub.py` executes it before uploading."""
    lines = [
        "import json",
        "",
        "import torch",
        "from huggingface_hub import hf_hub_download",
        "from transformers import AutoModel, AutoProcessor, pipeline",
        "",
        f"repo_id = {json.dumps(repo_id)}",
        f'pipe = pipeline("{TASK}", model=repo_id, trust_remote_code=True)',
        "",
        "# Word offsets (end exclusive) of the two entities; types from an NER tool (OntoNotes: PERSON, ORG, GPE...)",
        "example = {",
        f'    "tokens": "{" ".join(EXAMPLE["tokens"])}".split(),',
        f'    "subject": {json.dumps(EXAMPLE["subject"])},',
        f'    "object": {json.dumps(EXAMPLE["object"])},',
    ]
    if config.get("vision_model_name"):
        lines.append('    # "image": PIL.Image.open("post.jpg"),  # optional: the image of the post')
    lines += [
        "}",
        'print(pipe(example, top_k=3))  # [{"relation": ..., "score": ..., "description": ...}, ...]',
        "",
        "# The same with the model and processor directly",
        "model = AutoModel.from_pretrained(repo_id, trust_remote_code=True).eval()",
        "processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)",
        'inputs = processor(example["tokens"], example["subject"], example["object"])',
        "with torch.no_grad():",
        "    logits = model(**inputs).logits  # (1, num_relations): cos(pair, description) / temperature",
        "print(model.config.id2label[int(logits.argmax(-1))])",
        "",
        "# The relation bank on its own: {'labels': [...in id order], 'descriptions': {label: description}}",
        f'with open(hf_hub_download(repo_id, "{RELATION_BANK_FILE}"), encoding="utf-8") as f:',
        "    bank = json.load(f)",
        'relations = {label: bank["descriptions"][label] for label in bank["labels"]}',
    ]
    if can_add_relations(config):
        label, description = NEW_RELATION
        lines += [
            "# Relations chosen at call time: only these (plus the no-relation label) are scored, for this call;",
            "# one given with a threshold is predicted when it scores best and its cosine reaches the threshold",
            "print(pipe(example, relations={",
            f"    {json.dumps(label)}: {json.dumps(description)},",
            '    "spouse": {"description": "The subject and the object are married.", "threshold": 0.3},',
            "}))",
            "# A relation can also come with a few labelled pairs, {'description': ..., 'examples': [example, ...]}:",
            "# a detector fit on them decides whether it holds. On relations held out of MNRE training (MiniLM, five",
            "# folds) 5 examples gave unseen micro-F1 31.4, the description alone 9.7: see docs/new-relations.md.",
            "",
            "# New relations need only a description: no retraining",
            f"relations[{json.dumps(label)}] = {json.dumps(description)}",
            "pipe.model.set_relation_bank(relations)",
            "print(pipe(example, top_k=3))",
            "# A relation added after training scores below the trained ones; an offset on its cosine helps.",
            f"# On MNRE with MiniLM {NEW_RELATION_OFFSET} was best with no training example of it, 0.2 with 5;",
            "# too large an offset and the new relation takes over every prediction.",
            f"pipe.model.set_relation_bank(relations, score_offsets={{{json.dumps(label)}: {NEW_RELATION_OFFSET}}})",
            "print(pipe(example, top_k=3))",
        ]
    else:
        lines += [
            "# This model has a fixed label set (classification head or learned label embeddings): only the",
            "# descriptions of these labels may change, and they do not change its predictions.",
            "print(list(relations))",
        ]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _encoder_text(name: str) -> str:
    hub_id = EMBEDDED_BASE_MODELS.get(name)
    return f"`{name}` (a copy of `{hub_id}`)" if hub_id else f"`{name}`"


def _architecture(config: dict, training_args: dict) -> list[str]:
    text_encoder = training_args.get("text_encoder") or config.get("text_config", {}).get("_name_or_path") or "?"
    relation_encoder = training_args.get("relation_encoder") or text_encoder
    vision = config.get("vision_model_name")
    head = config.get("head", "retrieval")
    lines = [
        f"- Text encoder: {_encoder_text(text_encoder)}; entity markers {ENTITY_MARKERS_TEXT} added as special tokens."
    ]
    if vision:
        lines.append(f"- Vision encoder: `{vision}` (timm); images are optional per example.")
    else:
        lines.append("- Vision encoder: none. **This model is text only**: images given to it are ignored.")
    if config.get("use_fusion", True):
        over = "text and image tokens" if vision else "text tokens"
        lines.append(f"- Fusion: {config.get('num_fusion_layers')} Transformer layer(s) over the {over}.")
    else:
        lines.append("- Fusion: none (ablation: pairs come from the text encoder alone).")
    if head == "classification":
        lines.append(f"- Head: softmax classifier over the {len(config.get('relation_bank', {}))} training labels.")
    elif config.get("relation_source") == "learned":
        lines.append("- Head: retrieval over one learned embedding per label (no description encoder).")
    else:
        source = "label name" if config.get("relation_source") == "label_name" else "natural-language description"
        frozen = ", kept frozen" if config.get("freeze_relation_encoder") else ""
        lines.append(
            f"- Relations: each {source} is embedded by {_encoder_text(relation_encoder)}, mean-pooled{frozen}; "
            f"logits = cos(H_E, H_r) / τ with H_E of width {config.get('pair_embed_dim')}, τ "
            f"{'learned' if config.get('learnable_temperature', True) else 'fixed'} "
            f"(initial {config.get('retrieval_temperature')})."
        )
    types = "written into the text as `[ type ]` prompts" if config.get("use_entity_types", True) else "not used"
    lines.append(f"- Entity types: {types}.")
    return lines


def _training_data(
    eval_results: dict, training_args: dict, build_report: dict | None, dataset_repo_id: str | None
) -> list[str]:
    dataset = eval_results.get("dataset") or training_args.get("dataset_name_or_path") or "unknown"
    shown = (
        f"[`{dataset_repo_id}`](https://huggingface.co/datasets/{dataset_repo_id})"
        if dataset_repo_id
        else (f"`{dataset}`")
    )
    config_name = eval_results.get("dataset_config")
    lines = [f"- Dataset: {shown}" + (f", config `{config_name}`" if config_name else "") + "."]
    if dataset_repo_id and dataset_repo_id != dataset:
        lines.append(f"  (trained from the local build `{dataset}` of that dataset).")
    if build_report:
        sizes = ", ".join(f"{split} {_fmt(info.get('examples'))}" for split, info in build_report["splits"].items())
        lines.append(f"- Examples per split: {sizes}.")
        if build_report.get("missing_splits"):
            lines.append(f"- Splits absent from the source: {', '.join(build_report['missing_splits'])}.")
        untyped = [info.get("untyped_entities") or {} for info in build_report["splits"].values()]
        total, of = sum(u.get("total", 0) for u in untyped), sum(u.get("of", 0) for u in untyped)
        lines.append(
            f"- NER backend (entity types): **`{build_report.get('ner_backend', 'unknown')}`**, run over the words"
            + (f"; {100 * total / of:.1f}% of the entity spans got no type (`UNKNOWN`)." if of else ".")
        )
        images = [info.get("images") or {} for info in build_report["splits"].values()]
        found = sum(i.get("found", 0) for i in images)
        unique = sum(i.get("unique_images", 0) for i in images)
        if unique:
            lines.append(f"- Images found when the dataset was built: {_fmt(found)} of {_fmt(unique)}.")
    else:
        lines.append(
            "- NER backend (entity types): **unknown** (no `build_report.json` of the dataset was given to "
            "`push_to_hub.py --dataset_dir`)."
        )
    if training_args.get("max_train_samples"):
        lines.append(f"- Training used the first {_fmt(training_args['max_train_samples'])} training examples only.")
    lines.append(
        f"- Images used in training: {'yes' if training_args.get('use_images') else 'no'}."
        if training_args
        else "- Images used in training: unknown (no `training_args.json`)."
    )
    return lines


def runnable_command(command: str | None) -> str | None:
    """A recorded `python [path/]train.py FLAGS` as the installed console script `roc-train FLAGS` (`train.py` is a
    checkout's file, not shipped in the wheel); under `accelerate launch`, `-m roc_mre.training`."""
    if not command:
        return command
    words = shlex.split(command)
    script = next((i for i, word in enumerate(words) if word.endswith("train.py")), None)
    if script is None:
        return command
    if script == 1 and words[0].startswith("python"):
        return shlex.join(["roc-train", *words[2:]])
    return shlex.join([*words[:script], "-m", "roc_mre.training", *words[script + 1 :]])


def _training_procedure(eval_results: dict, training_args: dict) -> list[str]:
    lines = ["Command (from `eval_results.json`, as the installed `roc-train`; the resolved flags are in "
             "`training_args.json`):", ""]  # fmt: skip
    lines += ["```bash", runnable_command(eval_results.get("command")) or "(not recorded)", "```", ""]
    facts = []
    if eval_results.get("best_epoch") is not None:
        facts.append(f"best epoch {eval_results['best_epoch']} (selected on validation micro-F1)")
    if eval_results.get("world_size") is not None:
        facts.append(f"{eval_results['world_size']} process(es)")
    if eval_results.get("distributed_type") not in (None, "NO"):
        facts.append(f"distributed type {eval_results['distributed_type']}")
    if eval_results.get("mixed_precision") is not None:  # the effective one, recorded from accelerator.state
        facts.append(f"mixed precision {eval_results['mixed_precision']}")
    if eval_results.get("wall_time_s") is not None:
        facts.append(f"{eval_results['wall_time_s']:,} s wall time")
    if eval_results.get("machine"):
        facts.append(f"on {eval_results['machine']}")
    if facts:
        lines += ["Run: " + ", ".join(facts) + ".", ""]
    shown = [(k, training_args[k]) for k in KEY_FLAGS if k in training_args and training_args[k] not in (None, False)]
    if shown:
        lines += ["| flag | value |", "|---|---|", *[f"| `--{k}` | `{escape_cell(v)}` |" for k, v in shown], ""]
    return lines


def _evaluation(eval_results: dict, files: set[str]) -> list[str]:
    weighted = all("weighted_f1" in record["metrics"] for record in eval_results["splits"].values())
    header = "| split | examples | accuracy (%) | micro precision (%) | micro recall (%) | micro F1 (%) |"
    lines = [header + (" weighted P / R / F1, None included (%) |" if weighted else ""), ""]
    lines[1] = "|---" * (7 if weighted else 6) + "|"
    for split, record in eval_results["splits"].items():
        m = record["metrics"]
        row = (
            f"| {split} | {_fmt(m.get('num_examples', '?'))} | {m['accuracy']} | {m['precision']} | "
            f"{m['recall']} | {m['f1']} |"
        )
        if weighted:
            row += f" {m['weighted_precision']} / {m['weighted_recall']} / {m['weighted_f1']} |"
        lines.append(row)
    lines += [
        "",
        "Accuracy counts every example; micro precision / recall / F1 are over the relations other than `None` "
        "(HVPNeT's definition, the field's headline metric). The weighted P / R / F1 count `None` as a class "
        "(support-weighted over every label), the variant the ROC paper's MNRE table uses; on MNRE, where most "
        "examples are `None`, it sits far above the micro F1. The same numbers are in this card's `model-index` "
        "metadata and in `eval_results.json`.",
    ]
    reports = []
    for split in eval_results["splits"]:
        for name, what in (
            (f"per_relation_{split}.md", "per-relation scores"),
            (f"confusion_matrix_{split}.png", "confusion matrix"),
        ):
            if name in files:
                reports.append(f"[{what} ({split})]({name})")
    if reports:
        lines += ["", "Reports: " + ", ".join(reports) + "."]
    return lines


def template_values(
    *,
    repo_id: str,
    config: dict,
    eval_results: dict,
    training_args: dict | None = None,
    processor_config: dict | None = None,
    build_report: dict | None = None,
    dataset_repo_id: str | None = None,
    dataset_type: str = "",
    license: str = DEFAULT_LICENSE,
    files: Iterable[str] = (),
) -> dict[str, str]:
    """What `model_card_template.md` fills in: the facts of this run, gathered here; the prose is the template's."""
    training_args = training_args or {}
    files = set(files)
    labels = relation_labels(config)
    bank = config["relation_bank"]
    primary = eval_results["split"]
    max_length = (processor_config or {}).get("max_length") or training_args.get("max_length") or "a fixed number of"
    return {
        "model_name": repo_id.split("/")[-1],
        "num_relations": str(len(labels)),
        "f1": _fmt(eval_results["splits"][primary]["metrics"]["f1"]),
        "primary_split": primary,
        "architecture": "\n".join(_architecture(config, training_args)),
        "max_length": str(max_length),
        "training_data": "\n".join(_training_data(eval_results, training_args, build_report, dataset_repo_id)),
        "training_procedure": "\n".join(_training_procedure(eval_results, training_args)),
        "evaluation": "\n".join(_evaluation(eval_results, files)),
        "usage_snippet": usage_snippet(repo_id, config).rstrip("\n"),
        "relation_bank_file": RELATION_BANK_FILE,
        "relation_rows": "\n".join(
            f"| {i} | `{escape_cell(label)}` | {escape_cell(bank[label])} |" for i, label in enumerate(labels)
        ),
        "entity_markers": ENTITY_MARKERS_TEXT,
        "license_text": LICENSE_TEXT.get(license, f"`{license}`, as chosen by the uploader.")
        + " "
        + DATA_LICENSE_TEXT,
        "roc_citation": ROC_CITATION,
        "dataset_citation": (MORE_CITATION if "more" in dataset_type.lower() else MNRE_CITATION).strip(),
    }


def build_model_card(
    *,
    repo_id: str,
    config: dict,
    eval_results: dict,
    training_args: dict | None = None,
    processor_config: dict | None = None,
    build_report: dict | None = None,
    dataset_repo_id: str | None = None,
    dataset_name: str | None = None,
    license: str = DEFAULT_LICENSE,
    files: Iterable[str] = (),
) -> ModelCard:
    """The whole card: YAML header (with `model-index` from `eval_results.json`) + `model_card_template.md`."""
    training_args = training_args or {}
    dataset_type = dataset_repo_id or hub_dataset_type(
        eval_results.get("dataset") or training_args.get("dataset_name_or_path")
    )
    if not dataset_type:
        raise ValueError("eval_results.json names no dataset and no --dataset_repo_id was given.")
    model_name = repo_id.split("/")[-1]
    data = ModelCardData(
        language=["en"],
        license=license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=["roc", "relation-extraction", TASK, "multimodal", "retrieval", "custom_code"],
        base_model=base_model_id(training_args.get("text_encoder")),
        datasets=[dataset_repo_id] if dataset_repo_id else None,
        metrics=list(dict.fromkeys(metric_type for _, _, metric_type, _ in METRICS)),
        model_name=model_name,
        eval_results=eval_results_to_model_index(
            eval_results, dataset_type, dataset_name or dataset_type, eval_results.get("dataset_config")
        ),
    )
    values = template_values(
        repo_id=repo_id,
        config=config,
        eval_results=eval_results,
        training_args=training_args,
        processor_config=processor_config,
        build_report=build_report,
        dataset_repo_id=dataset_repo_id,
        dataset_type=dataset_type,
        license=license,
        files=files,
    )
    return ModelCard.from_template(data, template_path=TEMPLATE_PATH, **values)


__all__ = [
    "METRICS",
    "PIPELINE_TAG",
    "RELATION_BANK_FILE",
    "base_model_id",
    "build_model_card",
    "can_add_relations",
    "template_values",
    "eval_results_to_model_index",
    "relation_bank_payload",
    "relation_labels",
    "usage_snippet",
]
