"""Checks that HuggingFace's from_pretrained loads folders written by `export --format huggingface` and predicts what
the library predicts: for each folder, the logits of AutoModelForSequenceClassification on the texts against the
logits the CLI's `logits` command printed for the same folder (JSON lines).

    /usr/bin/python3 src/benchmarks/hf_from_pretrained.py TEXTS.txt HF_FOLDER LOGITS.jsonl [HF_FOLDER LOGITS.jsonl ...]

Needs the reference harness (../shared/reference: README.md, setup.sh); run with Debian's /usr/bin/python3.
"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("HF_REFERENCE", os.path.join(os.path.dirname(__file__), "../../../shared/reference")))
import hfenv  # noqa: E402,F401  (offline mode, exported transformers on the path)
import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

texts = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8")]
worst = 0.0
for folder, logits_file in zip(sys.argv[2::2], sys.argv[3::2]):
    ours = [json.loads(line) for line in open(logits_file, encoding="utf-8") if line.startswith("{")]
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=False)
    largest = 0.0
    same_argmax = True
    with torch.no_grad():
        for text, row in zip(texts, ours):
            ids = torch.tensor([row["input_ids"]])
            theirs = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
            hf_ids = tokenizer(text)["input_ids"]
            if hf_ids != row["input_ids"]:
                print(f"  {folder}: token ids differ for {text!r}")
            largest = max(largest, float((theirs - torch.tensor(row["logits"])).abs().max()))
            same_argmax &= int(theirs.argmax()) == max(range(len(row["logits"])), key=lambda i: row["logits"][i])
    print(f"{type(model).__name__} from {folder}: labels {model.config.id2label}, {len(ours)} texts, "
          f"largest |logit difference| {largest:.2e}, same predictions: {same_argmax}")
    worst = max(worst, largest)
sys.exit(0 if worst <= 1e-4 else 1)
