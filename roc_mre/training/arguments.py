"""train.py's command line: every flag, its help, its checks and `--config` files, importable without torch.

`python train.py --help` and a bad flag answer at once (importing torch and transformers takes seconds), so nothing
here imports them: the choices that come from the model's `Literal` types (`ROCConfig`'s fields, the processor's
caption modes) and the embedded encoder's name are read from the shipped sources by `model_constants`, which parses
them (`ast`) and never executes them. One source still holds each fact; a test checks the values equal the imported
ones.
"""

import argparse
import ast
import importlib.util
import json
import math
from functools import cache
from importlib.resources import files
from pathlib import Path


# The configs shipped as package data (importlib.resources: they load from a wheel, not only from a checkout).
CONFIGS = files("roc_mre") / "configs"

# Accelerate's trackers and the module each one needs (accelerate.utils.LoggerType).
TRACKER_PACKAGES = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "trackio": "trackio",
    "comet_ml": "comet_ml",
    "mlflow": "mlflow",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "aim": "aim",
    "swanlab": "swanlab",
}


@cache
def model_constants() -> dict:
    """`CHOICES`, `CAPTION_MODES` and `EMBEDDED_TEXT_ENCODER` of `modeling_roc`, read from its source files.

    Only the forms those files use are understood: `X = Literal[...]`, `X = get_args(Y)`, a dict of such values, and
    a string constant; anything else is skipped, so a changed source fails the test against the imported values.
    """
    spec = importlib.util.find_spec("modeling_roc")  # locates the package without running its __init__ (torch)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("modeling_roc is not importable: install the project (pip install -e .)")
    package = Path(next(iter(spec.submodule_search_locations)))
    values: dict = {}
    for name in ("configuration_roc.py", "processing_roc.py", "__init__.py"):
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = _static_value(node.value, values)
                if value is not None:
                    values[node.targets[0].id] = value
    return {key: values[key] for key in ("CHOICES", "CAPTION_MODES", "EMBEDDED_TEXT_ENCODER")}


def _static_value(node: ast.expr, known: dict):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if all(isinstance(item, ast.Constant) for item in items):
            return tuple(item.value for item in items)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "get_args"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
    ):
        return known.get(node.args[0].id)
    if isinstance(node, ast.Dict) and all(isinstance(key, ast.Constant) for key in node.keys):
        items = {key.value: _static_value(value, known) for key, value in zip(node.keys, node.values)}
        if all(value is not None for value in items.values()):
            return items
    return None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (`--num_train_epochs 0` would silently rewrite a run's results)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed numpy and torch both take (a negative one was a traceback deep in `set_seed`)."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value


def check_report_to(value: str, parser: argparse.ArgumentParser) -> str:
    """`--report_to` with every named tracker installed, or a parser error naming the missing one (as Trainer fails).

    Accelerate would only warn and train without it, so a long run would end with no curves where some were asked for.
    """
    import importlib.util

    names = [name.strip() for name in value.split(",") if name.strip()]
    if names in ([], ["none"]):
        return "none"
    if names == ["all"]:
        return "all"
    for name in names:
        if name not in TRACKER_PACKAGES:
            parser.error(f"--report_to {name}: unknown tracker; choose from {', '.join(TRACKER_PACKAGES)}, all, none")
        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            parser.error(
                f"--report_to {name}: the {TRACKER_PACKAGES[name]} package is not installed "
                f"(pip install {TRACKER_PACKAGES[name]})"
            )
    return ",".join(names)


def build_parser() -> argparse.ArgumentParser:
    """Every flag of train.py, grouped as `--help` shows them (a `--config` file takes the same names)."""
    constants = model_constants()
    choices = constants["CHOICES"]
    parser = argparse.ArgumentParser(
        description="Train / evaluate ROC (Retrieval over Classification) for multimodal relation extraction.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        help="YAML or JSON file whose keys are flag names (flags on the command line win), or the name of a config "
        f"shipped with the package: {', '.join(shipped_configs())}.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name_or_path", help="Dataset folder or Hub id built by datasets_scripts.build.")
    data.add_argument("--dataset_config_name", help="Config of the dataset (None: its default).")
    data.add_argument("--train_split", default="train", help="Split the model is trained on.")
    data.add_argument("--validation_split", default="validation", help="Split used to select the best epoch.")
    data.add_argument(
        "--test_split", default="test", help="Evaluated with the best model whenever the dataset has it."
    )
    data.add_argument("--relation_bank", default="mnre", help="Built-in bank name or JSON file {label: description}.")
    data.add_argument(
        "--symmetric_relations",
        nargs="*",
        metavar="LABEL",
        help="Relations that hold both ways (triple extraction then reports each such pair once), recorded in the "
        "model's config. Default: those the built-in bank marks (MNRE: couple, siblings, peer, neighbor, alumni, "
        "alternate names); none for a bank file.",
    )
    data.add_argument(
        "--max_train_samples", type=positive_int, help="Keep the first N training examples (quick runs)."
    )
    data.add_argument(
        "--max_eval_samples", type=positive_int, help="Keep the first N examples of each evaluated split."
    )
    data.add_argument("--use_images", action="store_true", help="Feed images (needs --vision_encoder).")
    data.add_argument(
        "--use_captions",
        action="store_true",
        help="Read each example's `caption` (an MLLM's text of the image; build the dataset with --captions) into "
        "the input, where --caption_mode puts it.",
    )
    data.add_argument(
        "--caption_mode",
        choices=constants["CAPTION_MODES"],
        default="text",
        help="With --use_captions: 'text' appends the caption to the marked text as a second segment (shortened "
        "first when --max_length is short); 'tokens' encodes it on its own and gives its tokens to the fusion "
        "layers, the slot where ROC puts image patches (a new model's config gets caption_tokens=True; a "
        "--model_name_or_path keeps the mode its processor was saved with).",
    )
    data.add_argument(
        "--max_caption_length",
        type=positive_int,
        default=64,
        help="With --caption_mode tokens: token budget of a caption (Qwen's MNRE captions: median 37, 99th "
        "percentile 82).",
    )
    data.add_argument(
        "--caption_dropout",
        type=float,
        default=0.0,
        help="With --use_captions: probability that a training example's caption is left out (seeded per example "
        "and epoch), so the model also works on posts without one.",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="A trained ROC folder / Hub id to evaluate or fine-tune further.")
    model.add_argument(
        "--text_encoder", default=constants["EMBEDDED_TEXT_ENCODER"], help="Hub id, folder or embedded name."
    )
    model.add_argument("--relation_encoder", help="Encoder of relation descriptions (default: --text_encoder).")
    model.add_argument("--vision_encoder", help="timm model name (e.g. vit_base_patch32_384); none: text only.")
    model.add_argument("--vision_pretrained", action="store_true", help="Download timm's pretrained weights.")
    model.add_argument("--vision_image_size", type=int, help="Override the timm model's input size.")
    model.add_argument(
        "--num_fusion_layers", type=non_negative_int, default=3, help="Transformer layers over [text; image]."
    )
    model.add_argument(
        "--pair_activation",
        default="sigmoid",
        choices=choices["pair_activation"],
        help="σ in H_E = σ(W[H_s; H_o] + b).",
    )
    model.add_argument("--pair_embed_dim", type=int, help="Width of H_E (default: relation encoder width).")
    model.add_argument("--temperature", type=float, default=0.05, help="τ (initial value when learnable).")
    model.add_argument("--fixed_temperature", action="store_true", help="Keep τ fixed instead of learning it.")
    model.add_argument(
        "--loss_mode",
        default="bank",
        choices=choices["loss_mode"],
        help="InfoNCE negatives: every relation of the bank, or the paper's in-batch gold descriptions.",
    )
    model.add_argument(
        "--head", default="retrieval", choices=choices["head"], help="ROC's retrieval, or a softmax head (baseline)."
    )
    model.add_argument(
        "--relation_source",
        default="description",
        choices=choices["relation_source"],
        help="What a relation is embedded from: its description, its label name, or a free learned vector.",
    )
    model.add_argument(
        "--entity_pooling",
        default="marker",
        choices=choices["entity_pooling"],
        help="H_s, H_o at the start markers, or a mean over the text (ablation).",
    )
    model.add_argument("--no_fusion", action="store_true", help="Ablation: no fusion encoder (text only).")
    model.add_argument("--no_entity_types", action="store_true", help="Ablation: no NER type prompts in the text.")
    model.add_argument(
        "--freeze_relation_encoder", action="store_true", help="Encode the descriptions once with fixed weights."
    )
    model.add_argument(
        "--marker_init",
        default="mean",
        choices=choices["marker_init"],
        help="Initial embeddings of the entity markers: 'mean' as transformers' resizing leaves them (all four "
        "markers one identical vector), 'words' from the words subject / object (distinct vectors; on MNRE a better "
        "first epoch, no better best epoch).",
    )
    model.add_argument("--max_length", type=int, default=128, help="Token budget of the marked text.")
    model.add_argument("--relation_max_length", type=int, default=64, help="Token budget of a relation description.")
    model.add_argument(
        "--pair_pool_size",
        type=non_negative_int,
        default=1024,
        help="Training pairs whose embeddings the model keeps (its pair_pool, 1 KB each at width 256): a relation "
        "given at call time that the model was not trained on must beat what only 5%% of them reach (the config's "
        "new_relation_false_positive_rate). 0: none (such relations compete with no relation). Default: %(default)s.",
    )

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", help="Run folder (model, results, checkpoints/).")
    train.add_argument("--do_train", action="store_true", help="Train (the default unless only --do_eval is given).")
    train.add_argument("--do_eval", action="store_true", help="Alone: evaluate --model_name_or_path on --eval_split.")
    train.add_argument("--eval_split", default="validation", help="Split of the evaluation-only mode.")
    train.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Train into a non-empty --output_dir by first removing the files of the run there (weights, results, "
        "checkpoints/); without it, or --resume_from_checkpoint, a non-empty folder is refused.",
    )
    train.add_argument("--num_train_epochs", type=positive_int, default=3, help="Passes over the training split.")
    train.add_argument("--per_device_train_batch_size", type=positive_int, default=32, help="Batch size per process.")
    train.add_argument("--per_device_eval_batch_size", type=positive_int, default=64, help="Batch size per process.")
    train.add_argument("--learning_rate", type=float, default=5e-5, help="Learning rate of the pretrained encoders.")
    train.add_argument("--head_learning_rate", type=float, default=1e-3, help="Learning rate of the new layers.")
    train.add_argument("--weight_decay", type=float, default=0.01, help="AdamW decay (not on biases, norms, τ).")
    train.add_argument("--warmup_ratio", type=float, default=0.1, help="Fraction of steps of linear warmup.")
    train.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm.")
    train.add_argument("--gradient_accumulation_steps", type=positive_int, default=1, help="Batches per update.")
    train.add_argument(
        "--mixed_precision",
        choices=["no", "fp16", "bf16"],
        help="Default: Accelerate's config. fp16 needs a GPU (on CPU Accelerate would silently run fp32): refused. "
        "bf16 on a CPU: about 1.5x faster where it has bfloat16 units (AMX / AVX-512 BF16), 13x slower where it "
        "emulates them (AVX2 only; warned).",
    )
    train.add_argument(
        "--mention_mask_prob",
        type=float,
        default=0.0,
        help="Augmentation: probability that a training entity's words are replaced by the mask token (each entity "
        "on its own, seeded per example and epoch; markers and type prompts stay), against memorising names.",
    )
    train.add_argument("--none_weight", type=float, default=1.0, help="Loss weight of examples whose gold is None.")
    space = parser.add_argument_group(
        "a relation space that generalizes (to relations described after training)",
        "Each needs the pair mapped into the frozen description space: --freeze_relation_encoder and --pair_embed_dim "
        "equal to the relation encoder's width (384 for MiniLM).",
    )
    space.add_argument(
        "--negative_pool",
        help="Relations that are not the dataset's, as extra negatives: 'wikidata' (11,665 Wikidata properties, "
        "CC0, downloaded from GLiREL's pinned commit and sha256-checked) or a JSON file (that list's format, or "
        "{label: description}). Identifier properties are skipped, and entries matching a relation of "
        "--relation_bank (every relation of the file) are dropped.",
    )
    space.add_argument(
        "--negatives_per_step",
        type=non_negative_int,
        default=256,
        help="Pool relations drawn as extra negatives for each training step (with --negative_pool).",
    )
    space.add_argument(
        "--pool_exclusion_threshold",
        type=float,
        default=0.45,
        help="A pool relation whose description-encoder cosine to any relation of --relation_bank (description, "
        "label name, or a --relation_wordings text) reaches this is taken to mean the same and dropped.",
    )
    space.add_argument(
        "--relation_dropout",
        type=float,
        default=0.0,
        help="Probability that a relation other than the gold ones and None leaves a training step's softmax "
        "(a changing label set).",
    )
    space.add_argument(
        "--relation_wordings",
        help="JSON {label: text or [texts]}: more wordings of the bank's relations; every step each relation is "
        "represented by one of its wordings (its description included), drawn at random.",
    )
    train.add_argument(
        "--seed", type=seed_int, default=42, help="Seeds weights, shuffling, dropout and augmentation (0 to 2**32-1)."
    )
    train.add_argument(
        "--checkpointing_steps", help="Save state every N optimizer steps, or 'epoch'.", default="epoch"
    )
    train.add_argument(
        "--checkpoints_total_limit",
        type=positive_int,
        default=2,
        help="Complete checkpoints kept in checkpoints/ (older ones are removed only after a newer one is complete).",
    )
    train.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or 'latest' in --output_dir.")
    train.add_argument(
        "--logging_steps", type=positive_int, default=50, help="Log loss / lr / τ every N optimizer steps."
    )
    train.add_argument(
        "--log_level", default="info", choices=["debug", "info", "warning", "error"], help="Main process log level."
    )
    train.add_argument(
        "--report_to",
        default="none",
        help="Experiment trackers through Accelerate, comma-separated: tensorboard (in the train extra), wandb, "
        "trackio, comet_ml, mlflow, clearml, dvclive, aim, swanlab; 'all' (every installed one) or 'none'. Loss, "
        "learning rates and τ go to log_history.jsonl and the log either way.",
    )
    train.add_argument("--dataloader_num_workers", type=non_negative_int, default=0, help="DataLoader workers.")
    train.add_argument(
        "--group_by_length",
        action="store_true",
        help="Shuffle so that each training batch holds examples of similar token length: less padding (random "
        "MNRE batches of 32 pad to 1.37x their real tokens, grouped ones to 1.01x), so faster epochs on CPU.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of `argv` (default `sys.argv`) over the values of a `--config` file, checked together."""
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        parser.set_defaults(**_read_config_file(pre.config, parser))
    args = parser.parse_args(argv)
    _validate(args, parser)
    return args


def shipped_configs() -> list[str]:
    """Names of the configs inside the package (`roc_mre/configs/<name>.yaml`), which work from any folder."""
    return sorted(entry.name[: -len(".yaml")] for entry in CONFIGS.iterdir() if entry.name.endswith(".yaml"))


def _config_source(path: str):
    """The file `--config path` means: the path itself when it exists, else the shipped config of that name.

    A name is the config's stem (`mnre_minilm_offline`), its file name, or `configs/<file name>` (the checkout's
    layout before the configs moved into the package, as older commands and results files spell it).
    """
    if Path(path).exists():
        return Path(path)
    candidate = Path(path)
    if candidate.parent in (Path("."), Path("configs")):
        name = candidate.name[: -len(candidate.suffix)] if candidate.suffix in (".yaml", ".yml") else candidate.name
        if name in shipped_configs():
            return CONFIGS / f"{name}.yaml"
    return None


def _read_config_file(path: str, parser: argparse.ArgumentParser) -> dict:
    """The flags of a YAML / JSON config file; a missing, unreadable or malformed file is one parser error."""
    if Path(path).is_dir():
        parser.error(f"--config {path} is a folder, not a YAML or JSON file")
    source = _config_source(path)
    if source is None:
        shipped = ", ".join(shipped_configs())
        parser.error(f"--config {path}: no such file, and no shipped config of that name (shipped: {shipped})")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        parser.error(f"--config {path}: no such file")
    except UnicodeDecodeError as err:
        parser.error(f"--config {path}: not UTF-8 text ({err.reason} at byte {err.start})")
    except OSError as err:
        parser.error(f"--config {path}: cannot be read ({err.strerror})")
    try:
        if source.name.endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except ValueError as err:  # json.JSONDecodeError
        parser.error(f"--config {path}: not valid JSON ({err})")
    except Exception as err:  # noqa: BLE001 - yaml.YAMLError, without importing yaml for JSON files
        reason = " ".join(str(err).split())
        parser.error(f"--config {path}: not valid YAML ({reason})")
    if not isinstance(values, dict):
        parser.error(f"{path}: expected a mapping of flag names to values, got {type(values).__name__}")
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        parser.error(f"{path}: unknown keys {unknown} (every key must be a flag name of train.py)")
    return {key: _config_value(path, actions[key], value, parser) for key, value in values.items()}


def _config_value(path: str, action: argparse.Action, value, parser: argparse.ArgumentParser):
    """A config file's value checked exactly as the same flag on the command line (type, choices, on/off flags)."""
    if value is None:
        return action.default
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):  # "false" (a string) is not False
            parser.error(f"{path}: {action.dest} is an on/off flag: true or false, got {value!r}")
        return value
    if action.nargs in ("*", "+"):
        # a list flag: a string would be read letter by letter ("abc" -> ['a', 'b', 'c'])
        if not isinstance(value, list):
            parser.error(f"{path}: {action.dest} takes a list (e.g. [{value!r}]), got {value!r}")
        return [_config_value(path, _one_value(action), item, parser) for item in value]
    if isinstance(value, (dict, list)):
        parser.error(f"{path}: {action.dest} takes one value, got {value!r}")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        converted = action.type(text) if action.type else text
    except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
        parser.error(f"{path}: {action.dest}: invalid value {value!r} ({err})")
    if action.choices is not None and converted not in action.choices:
        parser.error(f"{path}: {action.dest}: invalid choice {value!r} (choose from {', '.join(action.choices)})")
    return converted


def _one_value(action: argparse.Action) -> argparse.Action:
    """`action` as if it took one value: a list flag's items are checked as the flag's single values are."""
    return argparse.Action(action.option_strings, action.dest, type=action.type, choices=action.choices)


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    args.do_train = args.do_train or not args.do_eval
    if not args.dataset_name_or_path:
        parser.error("--dataset_name_or_path is required (a folder or Hub id built by datasets_scripts.build)")
    if not args.do_train and not args.model_name_or_path:
        parser.error("evaluation-only mode (--do_eval without --do_train) needs --model_name_or_path")
    if not args.output_dir:
        if args.do_train:
            parser.error("--output_dir is required for training")
        # in the working folder, as transformers' output_dir: never inside the model's folder (a run of its own),
        # and a flat name, never a folder named like a Hub id, which would shadow the repository for later loads
        model = Path(args.model_name_or_path)
        name = model.resolve().name if model.is_dir() else args.model_name_or_path.replace("/", "--")
        args.output_dir = f"eval_{args.eval_split}-{name}"
    if args.use_images and not (args.vision_encoder or args.model_name_or_path):
        parser.error("--use_images needs --vision_encoder (a timm model name)")
    if args.checkpointing_steps != "epoch" and not (
        str(args.checkpointing_steps).isdigit() and int(args.checkpointing_steps) >= 1
    ):
        parser.error(f"--checkpointing_steps must be a number >= 1 or 'epoch', got {args.checkpointing_steps!r}")
    for name in ("learning_rate", "head_learning_rate", "temperature"):
        if not 0 < getattr(args, name) < math.inf:
            parser.error(f"--{name} must be a finite number > 0, got {getattr(args, name)}")
    for name in ("none_weight", "max_grad_norm", "weight_decay"):
        if not 0 <= getattr(args, name) < math.inf:
            parser.error(f"--{name} must be a finite number >= 0, got {getattr(args, name)}")
    for name in ("relation_dropout", "pool_exclusion_threshold"):
        if not 0.0 <= getattr(args, name) < 1.0:
            parser.error(f"--{name} must be in [0, 1), got {getattr(args, name)}")
    if args.max_length < 8 or args.relation_max_length < 1:
        parser.error(
            f"--max_length must be >= 8 (markers and type prompts) and --relation_max_length >= 1, got "
            f"{args.max_length} and {args.relation_max_length}"
        )
    if args.pair_embed_dim is not None and args.pair_embed_dim < 1:
        parser.error(f"--pair_embed_dim must be >= 1, got {args.pair_embed_dim}")
    if not 0.0 <= args.warmup_ratio < 1.0:
        parser.error(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
    args.report_to = check_report_to(args.report_to, parser)
    if not 0.0 <= args.caption_dropout <= 1.0:
        parser.error(f"--caption_dropout must be in [0, 1], got {args.caption_dropout}")
    if args.caption_dropout and not args.use_captions:
        parser.error("--caption_dropout needs --use_captions")
    if args.caption_mode != "text" and not args.use_captions:
        parser.error(f"--caption_mode {args.caption_mode} needs --use_captions")
    if args.caption_mode == "tokens" and args.no_fusion:
        parser.error("--caption_mode tokens needs the fusion layers (drop --no_fusion)")
    if not 0.0 <= args.mention_mask_prob <= 1.0:
        parser.error(f"--mention_mask_prob must be in [0, 1], got {args.mention_mask_prob}")
    if args.none_weight != 1.0 and args.loss_mode == "in_batch":
        parser.error("--none_weight applies to the bank / classification losses, not loss_mode=in_batch")
    if args.model_name_or_path:  # last: the checks above name the flags a user got wrong first
        from roc_mre.model_reference import check_model_reference  # stdlib only: --help stays free of torch

        check_model_reference("--model_name_or_path", args.model_name_or_path)
