#!/usr/bin/env python3
"""The one train/test split of a comment corpus, shared by baseline.py and the Rust
benchmark (which reads the files this writes).

Each comment counts as written by its own customer: customer i is the i-th data row of
the corpus TSV (0-based, header excluded). The customers are shuffled with
`random.Random(SEED).shuffle` (seed 7; Python's Mersenne Twister and its shuffle are
stable across CPython 3 versions), the first round(0.7 * n) go to train, the rest to test.
Both parts are written in ascending customer order.

    python3 bench/text/split.py fixtures/comments/zh_product_reviews.tsv [--out DIR] [--ids]
    python3 bench/text/split.py --all [--out target/text-split]

writes DIR/train.tsv and DIR/test.tsv (default DIR: target/text-split/<corpus name>/),
each with the corpus header `label<TAB>text`, or `customer<TAB>label<TAB>text` with --ids.
Standard library only.
"""
import argparse
import glob
import os
import random

SEED = 7
TRAIN_FRACTION = 0.7
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS_DIR = os.path.join(ROOT, "fixtures", "comments")


def load_corpus(path):
    """-> (labels, texts): a `label<TAB>text` TSV with a header; the text is everything
    after the first tab."""
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["label", "text"]:
            raise ValueError(f"{path}: header must be label<TAB>text, got {header}")
        for n, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in ("0", "1"):
                raise ValueError(f"{path}:{n}: bad row")
            labels.append(int(label))
            texts.append(text)
    return labels, texts


def split_customers(n, seed=SEED, train_fraction=TRAIN_FRACTION):
    """-> (train, test): sorted lists of customer indices 0..n-1."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_train = int(round(n * train_fraction))
    return sorted(order[:n_train]), sorted(order[n_train:])


def corpora(corpus_dir=CORPUS_DIR):
    """The corpus files (every *.tsv but the lexicons), sorted by name."""
    return sorted(p for p in glob.glob(os.path.join(corpus_dir, "*.tsv"))
                  if not os.path.basename(p).startswith("lexicon_"))


def corpus_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def write_split(path, out_dir, ids=False):
    labels, texts = load_corpus(path)
    train, test = split_customers(len(labels))
    os.makedirs(out_dir, exist_ok=True)
    for part, idx in (("train", train), ("test", test)):
        with open(os.path.join(out_dir, f"{part}.tsv"), "w", encoding="utf-8",
                  newline="\n") as f:
            f.write("customer\tlabel\ttext\n" if ids else "label\ttext\n")
            for i in idx:
                prefix = f"c{i:06d}\t" if ids else ""
                f.write(f"{prefix}{labels[i]}\t{texts[i]}\n")
    return len(train), len(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", help="a corpus TSV")
    ap.add_argument("--all", action="store_true", help="every corpus in fixtures/comments")
    ap.add_argument("--out", help="output folder (with --all: the parent of one per corpus)")
    ap.add_argument("--ids", action="store_true", help="add a customer column (c000123)")
    a = ap.parse_args()
    if a.all == bool(a.corpus):
        ap.error("give one corpus or --all")
    paths = corpora() if a.all else [a.corpus]
    base = os.path.join(ROOT, "target", "text-split")
    for p in paths:
        if a.all or not a.out:
            out = os.path.join(a.out or base, corpus_name(p))
        else:
            out = a.out
        n_train, n_test = write_split(p, out, ids=a.ids)
        print(f"{corpus_name(p)}: train {n_train}, test {n_test} -> {out}")


if __name__ == "__main__":
    main()
