"""The ROC demo, as a Hugging Face Space runs it (`python app.py`): see `roc_mre.demo`.

Locally: `python app.py --model runs/mnre-minilm-offline` (a run folder or a Hub id; `--examples data/mnre` takes the
example posts from a built dataset's validation split; `--help` lists the rest).
"""

from pathlib import Path

from roc_mre.demo import main


if __name__ == "__main__":
    main(folder=Path(__file__).resolve().parent)
