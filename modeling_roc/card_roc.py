"""The model card `ROCModel.push_to_hub` writes when the Hub repo has none.

transformers' `push_to_hub` writes a generic card ("This is the model card of a 🤗 transformers model...") with no
license, citation, usage or word on metrics. A ROC model knows more than that from its config alone: its relations and
their descriptions, how to call it (relations chosen at call time included) and what to cite. Metrics are not in the
weights: they come from a training run's records, which `roc-push` (the project's publishing tool) turns into a
`model-index`; this card says so instead of inventing numbers.

Shipped beside `modeling_roc.py` as remote code, so it imports only `huggingface_hub` (a transformers dependency) and
the standard library.
"""

import json

from huggingface_hub import ModelCard, ModelCardData


ROC_CITATION = """@inproceedings{hei2025roc,
  title={Retrieval over Classification: Integrating Relation Semantics for Multimodal Relation Extraction},
  author={Hei, Lei and Liao, Tingjing and Pei, Yingxin and Qi, Yiyang and Wang, Jiaqi and Li, Ruiting and Ren, Feiliang},
  booktitle={Proceedings of the 2025 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year={2025},
  url={https://arxiv.org/abs/2509.21151}
}"""  # noqa: E501 (the authors line is one bibtex field)
CARD_TAGS = ["roc", "relation-extraction", "multimodal", "retrieval", "custom_code"]
DEFAULT_LICENSE = "apache-2.0"


def escape_cell(text: str) -> str:
    """`text` as one markdown table cell (the cards of `push_to_hub` and of `roc-push` both use it)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def roc_model_card(
    repo_id: str, config, task: str, license: str = DEFAULT_LICENSE, tags: list[str] | None = None
) -> ModelCard:
    """A card from what the model itself knows (`config`): relations, usage, license, citation; no metrics."""
    bank = dict(config.relation_bank or {})
    labels = list(config.relation_labels)
    data = ModelCardData(
        language=["en"],
        license=license,
        library_name="transformers",
        pipeline_tag="other",
        tags=list(dict.fromkeys([*CARD_TAGS, *(tags or [])])),
    )
    new_relations = ""
    if config.head == "retrieval" and config.relation_source == "description":
        new_relations = (
            "\n# relations chosen for one call (they replace the bank for that call; the model is unchanged):\n"
            'print(pipe(example, relations={"/per/org/works_for": "The subject is a person who works for the object, '
            'an organization."}))'
        )
    rows = "\n".join(f"| `{escape_cell(label)}` | {escape_cell(bank.get(label, ''))} |" for label in labels)
    body = f"""# {repo_id.split("/")[-1]}

A [ROC](https://arxiv.org/abs/2509.21151) model (Retrieval over Classification) for multimodal relation extraction:
given a post, a subject span and an object span (and optionally the post's image), it embeds the entity pair and
returns the relation whose natural-language description is most similar.

## Usage

```python
from transformers import pipeline

pipe = pipeline("{task}", model={json.dumps(repo_id)}, trust_remote_code=True)
example = {{
    "tokens": "Rafael Nadal gets engaged to Mery Perello".split(),
    "subject": {{"start": 0, "end": 2, "type": "PERSON"}},
    "object": {{"start": 5, "end": 7, "type": "PERSON"}},
}}
print(pipe(example, top_k=3)){new_relations}
```

## Relations

| label | description |
|---|---|
{rows}

## Evaluation

No evaluation results are recorded in this card: it was written by `model.push_to_hub`, which sees the weights and
the config only. Publishing the training run with the project's `roc-push --model_dir RUN --repo_id {repo_id}` adds
the run's metrics (`model-index`), training data and procedure.

## License

The code is Apache-2.0; the weights are published under `{license}` by the uploader. The training data's own terms
apply to the weights as well.

## Citation

```bibtex
{ROC_CITATION}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
