#!/usr/bin/env python3
"""Python reference baselines for comment sentiment, for the Rust implementation to match.

For every corpus in fixtures/comments/ (label<TAB>text, 1 positive / 0 negative), the
70/30 customer split of split.py (seed 7) is used; on the train part a TF-IDF +
logistic-regression model is fitted for each feature set, and ROC-AUC is measured on the
test part:
  English  word (1,2) n-grams  and  char_wb (2,5)
  Chinese  char (1,2) n-grams  and  char_wb (2,5)
TfidfVectorizer(sublinear_tf=True, otherwise defaults; lowercase), LogisticRegression(
C=4.0, lbfgs, max_iter=2000). C=4 was fixed once for all corpora after a sweep of
{0.25, 1, 4, 16} (within 0.006 of the best on each; the default C=1 scores 0.005-0.03
lower); it is not tuned per corpus. "best" in the table is picked on the test part.

Lexicon-only baseline (no training): score = sum of the lexicon scores of the tokens.
  English  lexicon_en.tsv (VADER, rescaled to [-1, 1]); tokens = whitespace-split words,
           looked up as written (lowercased) and then with the surrounding punctuation
           stripped (so emoticons such as ":)" and words such as "great!" both count).
  Chinese  lexicon_zh.tsv (HowNet, +1/-1); tokens = jieba.lcut (default dictionary), and,
           as a second row, forward maximum matching of the lexicon terms over the text
           (substring matching, no segmenter).

Prints a markdown table and writes bench/text/baseline.json.

    pip install -r bench/text/requirements.txt
    python3 bench/text/baseline.py
"""
import json
import os
import platform
import string
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ beside split.py

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from split import (CORPUS_DIR, SEED, TRAIN_FRACTION, corpora, corpus_name,  # noqa: E402
                   load_corpus, split_customers)

C = 4.0
FEATURES = {
    "en": [("word", (1, 2)), ("char_wb", (2, 5))],
    "zh": [("char", (1, 2)), ("char_wb", (2, 5))],
}
PUNCT = string.punctuation + "“”‘’…"


def load_lexicon(path):
    lex = {}
    with open(path, encoding="utf-8") as f:
        f.readline()
        for line in f:
            term, _, score = line.rstrip("\n").partition("\t")
            if term:
                lex[term] = float(score)
    return lex


def score_en(text, lex):
    s = 0.0
    for tok in text.lower().split():
        if tok in lex:
            s += lex[tok]
        else:
            w = tok.strip(PUNCT)
            if w in lex:
                s += lex[w]
    return s


def score_zh_jieba(text, lex, jieba):
    return sum(lex.get(t, 0.0) for t in jieba.lcut(text))


def score_zh_fmm(text, lex, max_len):
    s, i, n = 0.0, 0, len(text)
    while i < n:
        for L in range(min(max_len, n - i), 0, -1):
            v = lex.get(text[i:i + L])
            if v is not None:
                s += v
                i += L
                break
        else:
            i += 1
    return s


def lexicon_rows(lang, texts, y):
    lex = load_lexicon(os.path.join(CORPUS_DIR, f"lexicon_{lang}.tsv"))
    out = {}
    if lang == "en":
        variants = {"lexicon": lambda t: score_en(t, lex)}
    else:
        variants = {}
        try:
            import jieba
            jieba.setLogLevel(60)
            jieba.initialize()
            variants["lexicon_jieba"] = lambda t: score_zh_jieba(t, lex, jieba)
        except ImportError:
            print("jieba not installed: skipping the jieba lexicon row", file=sys.stderr)
        max_len = max(len(t) for t in lex)
        variants["lexicon_substring"] = lambda t: score_zh_fmm(t, lex, max_len)
    for name, fn in variants.items():
        t0 = time.perf_counter()
        s = np.array([fn(t) for t in texts])
        out[name] = {"roc_auc": round(float(roc_auc_score(y, s)), 4),
                     "coverage": round(float(np.mean(s != 0)), 4),
                     "seconds": round(time.perf_counter() - t0, 2)}
    return out


def run_corpus(path):
    name = corpus_name(path)
    lang = name.split("_", 1)[0]
    labels, texts = load_corpus(path)
    train, test = split_customers(len(labels))
    x_tr = [texts[i] for i in train]
    x_te = [texts[i] for i in test]
    y_tr = np.array([labels[i] for i in train])
    y_te = np.array([labels[i] for i in test])
    res = {"lang": lang, "n": len(labels), "n_train": len(train), "n_test": len(test),
           "positive_rate": round(float(np.mean(labels)), 4), "models": {}}
    for analyzer, ngrams in FEATURES[lang]:
        key = f"tfidf_lr_{analyzer}_{ngrams[0]}_{ngrams[1]}"
        t0 = time.perf_counter()
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True)
        a = vec.fit_transform(x_tr)
        model = LogisticRegression(C=C, max_iter=2000).fit(a, y_tr)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = model.decision_function(vec.transform(x_te))
        pred_s = time.perf_counter() - t0
        res["models"][key] = {"roc_auc": round(float(roc_auc_score(y_te, scores)), 4),
                              "features": int(a.shape[1]), "fit_seconds": round(fit_s, 2),
                              "predict_seconds": round(pred_s, 2)}
        print(f"  {name} {key}: {res['models'][key]}", file=sys.stderr, flush=True)
    best = max(res["models"], key=lambda k: res["models"][k]["roc_auc"])
    res["best_tfidf"] = best
    res["lexicon"] = lexicon_rows(lang, x_te, y_te)
    return name, res


def short(key):
    analyzer, lo, hi = key.replace("tfidf_lr_", "").rsplit("_", 2)
    return f"{analyzer} ({lo},{hi})"


def main():
    results = {}
    for path in corpora():
        name, res = run_corpus(path)
        results[name] = res
    lines = ["| corpus | lang | n (train/test) | pos | TF-IDF+LR word/char (1-2) | "
             "TF-IDF+LR char_wb (2-5) | best TF-IDF | lexicon (en words, zh jieba) | "
             "lexicon (zh substring) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = list(r["models"].values())
        lx = r["lexicon"]
        first = lx.get("lexicon") or lx.get("lexicon_jieba") or lx["lexicon_substring"]
        sub = lx.get("lexicon_substring")
        lines.append(
            f"| {name} | {r['lang']} | {r['n']} ({r['n_train']}/{r['n_test']}) | "
            f"{r['positive_rate']:.2f} | {m[0]['roc_auc']:.4f} | {m[1]['roc_auc']:.4f} | "
            f"{short(r['best_tfidf'])} | "
            f"{first['roc_auc']:.4f} (cov {first['coverage']:.2f}) | "
            + (f"{sub['roc_auc']:.4f} (cov {sub['coverage']:.2f}) |" if sub else "- |"))
    table = "\n".join(lines)
    print(table)
    try:
        import jieba
        jieba_version = jieba.__version__
    except ImportError:
        jieba_version = None
    out = {"split": {"seed": SEED, "train_fraction": TRAIN_FRACTION,
                     "unit": "customer (one comment each)", "module": "bench/text/split.py"},
           "model": {"vectorizer": "TfidfVectorizer(sublinear_tf=True)",
                     "classifier": f"LogisticRegression(C={C}, max_iter=2000)",
                     "metric": "ROC-AUC on the test part"},
           "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                        "numpy": np.__version__, "jieba": jieba_version},
           "corpora": results, "table": table}
    with open(os.path.join(HERE, "baseline.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
