"""The ROC demo, as a Hugging Face Space runs it (`python app.py`): see `roc_mre.demo`.

python app.py --model runs/mnre-minilm-offline
python app.py --model org/roc-mnre --examples data/mnre
"""

from pathlib import Path

from roc_mre.demo import main


if __name__ == "__main__":
    main(folder=Path(__file__).resolve().parent)
