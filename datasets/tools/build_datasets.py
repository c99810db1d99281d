#!/usr/bin/env python3
"""Builds datasets/sentiment and datasets/support-tickets from the hand-written sources in tools/source.

Every sentence in tools/source was written for this repository. This script only assembles them:
it normalises whitespace, refuses duplicates, groups rows that share phrasing so a group never
straddles train and test, splits 80/20 per label (and per review domain) with a fixed seed,
shuffles, writes the TSV files and validates what it wrote.

    python3 datasets/tools/build_datasets.py          # rebuild and validate
    python3 datasets/tools/build_datasets.py --check  # validate the committed files only
"""

import argparse
import collections
import random
import re
import sys
from pathlib import Path

SEED = 8
TEST_FRACTION = 0.2
# Two rows whose shared word 3-grams cover at least this share of the shorter row's 3-grams
# are "near each other" and always land in the same split.
NEAR_OVERLAP = 0.5

TOOLS = Path(__file__).resolve().parent
DATASETS = TOOLS.parent
SOURCE = TOOLS / "source"

SENTIMENT_LABELS = {"+": "positive", "-": "negative"}
TICKET_LABELS = ["billing", "login_access", "shipping_delivery", "technical_bug", "refund_return", "account_settings"]


def fail(message):
    sys.exit(f"error: {message}")


def normalise(text):
    return " ".join(text.split())


def dedupe_key(text):
    """Case, punctuation and spacing do not make two texts different."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def trigrams(text):
    w = words(text)
    return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}


def read_sentiment():
    rows = []
    for path in sorted((SOURCE / "sentiment").glob("*.txt")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            marker, _, text = line.partition(" ")
            if marker not in SENTIMENT_LABELS or not text.strip():
                fail(f"{path}:{number}: expected '+ text' or '- text', got {line!r}")
            rows.append({"label": SENTIMENT_LABELS[marker], "text": normalise(text), "stratum": path.stem,
                         "where": f"{path.name}:{number}"})
    return rows


def read_tickets():
    rows = []
    for label in TICKET_LABELS:
        path = SOURCE / "support-tickets" / f"{label}.txt"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            rows.append({"label": label, "text": normalise(line), "stratum": label, "where": f"{path.name}:{number}"})
    return rows


def refuse_duplicates(rows):
    seen = {}
    for row in rows:
        key = dedupe_key(row["text"])
        if key in seen:
            fail(f"{row['where']} repeats {seen[key]}: {row['text']!r}")
        seen[key] = row["where"]


def near_groups(rows):
    """Union-find over rows that share most of their word 3-grams."""
    parent = list(range(len(rows)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    grams = [trigrams(r["text"]) for r in rows]
    index = collections.defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            index[gram].append(i)
    for i, g in enumerate(grams):
        shared = collections.Counter(j for gram in g for j in index[gram] if j > i)
        for j, count in shared.items():
            if count / min(len(g), len(grams[j])) >= NEAR_OVERLAP:
                parent[find(i)] = find(j)
    groups = collections.defaultdict(list)
    for i in range(len(rows)):
        groups[find(i)].append(rows[i])
    return sorted(groups.values(), key=lambda g: g[0]["where"])


def split(rows, rng):
    """Whole near-groups go to test while every (label, stratum) they touch still has room."""
    totals = collections.Counter((r["label"], r["stratum"]) for r in rows)
    quota = {key: round(count * TEST_FRACTION) for key, count in totals.items()}
    taken = collections.Counter()
    groups = near_groups(rows)
    rng.shuffle(groups)
    train, test = [], []
    for group in groups:
        need = collections.Counter((r["label"], r["stratum"]) for r in group)
        if all(taken[key] + n <= quota[key] for key, n in need.items()):
            taken.update(need)
            test.extend(group)
        else:
            train.extend(group)
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def write_tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("Label\tText\n")
        for row in rows:
            f.write(f"{row['label']}\t{row['text']}\n")


def read_tsv(path, labels):
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] != "":
        fail(f"{path}: the last line must end with a newline")
    lines = lines[:-1]
    if lines[0] != "Label\tText":
        fail(f"{path}:1: header must be 'Label<TAB>Text', got {lines[0]!r}")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 2:
            fail(f"{path}:{number}: expected 2 tab-separated fields, got {len(fields)}")
        label, text = fields
        if label not in labels:
            fail(f"{path}:{number}: label {label!r} is not one of {sorted(labels)}")
        if not text.strip() or text != normalise(text):
            fail(f"{path}:{number}: text is empty or has stray whitespace")
        if text.startswith('"'):
            fail(f"{path}:{number}: text starts with a quote, which quoting TSV readers would misread")
        rows.append((label, text))
    return rows


def validate(name, labels, word_range):
    folder = DATASETS / name
    train = read_tsv(folder / "train.tsv", labels)
    test = read_tsv(folder / "test.tsv", labels)
    print(f"{name}: {len(train)} train, {len(test)} test")
    for split_name, rows in (("train", train), ("test", test)):
        counts = collections.Counter(label for label, _ in rows)
        if set(counts) != set(labels):
            fail(f"{name}/{split_name}: labels present are {sorted(counts)}, expected {sorted(labels)}")
        mean = len(rows) / len(labels)
        for label, count in sorted(counts.items()):
            if abs(count - mean) > 0.05 * mean:
                fail(f"{name}/{split_name}: {label} has {count} rows, more than 5% away from the mean {mean:.1f}")
        print(f"  {split_name}: " + ", ".join(f"{label} {counts[label]}" for label in sorted(labels)))
    keys = collections.Counter(dedupe_key(text) for _, text in train + test)
    repeated = [k for k, n in keys.items() if n > 1]
    if repeated:
        fail(f"{name}: {len(repeated)} texts occur more than once, e.g. {repeated[0]!r}")
    lengths = [len(text.split()) for _, text in train + test]
    if word_range and not word_range[0] <= min(lengths) <= max(lengths) <= word_range[1]:
        fail(f"{name}: texts have {min(lengths)} to {max(lengths)} words, expected {word_range[0]} to {word_range[1]}")
    print(f"  words per text: min {min(lengths)}, median {sorted(lengths)[len(lengths) // 2]}, max {max(lengths)}")
    # How much of each test text's phrasing (word 3-grams) already occurs in one train text.
    train_grams = [trigrams(text) for _, text in train]
    index = collections.defaultdict(list)
    for i, g in enumerate(train_grams):
        for gram in g:
            index[gram].append(i)
    overlaps = []
    for _, text in test:
        g = trigrams(text)
        shared = collections.Counter(i for gram in g for i in index[gram])
        overlaps.append(max(shared.values()) / len(g) if shared else 0.0)
    high = sum(o >= NEAR_OVERLAP for o in overlaps)
    print(f"  test-vs-train 3-gram overlap: mean {sum(overlaps) / len(overlaps):.3f}, "
          f"max {max(overlaps):.2f}, test rows at or above {NEAR_OVERLAP}: {high}")
    if high:
        fail(f"{name}: {high} test rows share most of their phrasing with a train row")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only validate the TSV files already written")
    args = parser.parse_args()
    if not args.check:
        for name, rows in (("sentiment", read_sentiment()), ("support-tickets", read_tickets())):
            refuse_duplicates(rows)
            train, test = split(rows, random.Random(SEED))
            write_tsv(DATASETS / name / "train.tsv", train)
            write_tsv(DATASETS / name / "test.tsv", test)
    validate("sentiment", set(SENTIMENT_LABELS.values()), (3, 60))
    validate("support-tickets", set(TICKET_LABELS), None)


if __name__ == "__main__":
    main()
