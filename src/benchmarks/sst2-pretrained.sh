#!/usr/bin/env bash
# SST-2 with models this project pretrains itself, with and without domain-adaptive pretraining (DAPT):
#   1. general pretraining of a tiny encoder (masked LM) and a tiny decoder (causal LM) from scratch on unlabelled
#      text: NLTK's Project Gutenberg books plus the training splits of the project's own datasets (the corpus of the
#      shipped builtin:gpt2-mini-gutenberg);
#   2. DAPT: the same models, and the shipped decoder, continue pretraining on SST-2's *training* sentences (never
#      dev or test, whose accuracy is reported);
#   3. each is fine-tuned on SST-2 train through the CLI's ML.NET pipeline and evaluated on SST-2 dev — encoders with
#      the classification head, decoders with the head and with the prompt strategy.
#
#   bash src/benchmarks/sst2-pretrained.sh [DATASETS_DIR] [RESULTS_DIR]
#
# DATASETS_DIR holds sst2/ and gutenberg-nltk/ (default: ../shared/datasets beside the repository).
# Knobs: PRETRAIN_EPOCHS (general, default 3), DAPT_EPOCHS (default 10), EPOCHS (fine-tuning, default 3),
# LR (fine-tuning learning rate, default 3e-4), ONLY (a space-separated subset of: encoder decoder shipped).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
out="${2:-$repo/src/benchmarks/results/sst2-pretrained}"
pretrain_epochs="${PRETRAIN_EPOCHS:-3}"
dapt_epochs="${DAPT_EPOCHS:-10}"
epochs="${EPOCHS:-3}"
lr="${LR:-3e-4}"
only="${ONLY:-encoder decoder shipped}"
mkdir -p "$out/corpus"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
cli() { dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" "$@"; }

source "$repo/src/benchmarks/general-corpus.sh"
general_corpus "$data" "$out"
# Domain text: SST-2's training sentences only.
tail -n +2 "$data/sst2/train.tsv" | cut -f2 > "$out/corpus/sst2-train.txt"

pretrain() {
  local name="$1"; shift
  if [ ! -f "$out/$name/model.safetensors" ]; then
    cli pretrain --output "$out/$name" --json "$@" > "$out/$name.log" 2>&1
  fi
  python3 - "$out/$name.log" "$name" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"pretrain {sys.argv[2]:22} {r.get('tokens_per_second', 0):8.0f} tok/s  validation perplexity {r.get('validation_perplexity', float('nan')):8.1f}"
      f"  ({r.get('training_seconds', 0):.0f} s, {r.get('steps', 0)} steps)")
PY
}

finetune() {
  local name="$1"; shift
  cli train --data "$data/sst2/train.tsv" --test "$data/sst2/dev.tsv" --epochs "${FT_EPOCHS:-$epochs}" --batch-size 32 \
      --learning-rate "$lr" --max-length 64 --seed 1 --no-baseline --output "$out/$name.zip" --json "$@" > "$out/$name.log" 2>&1
  python3 - "$out/$name.log" "$name" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"sst2-dev {sys.argv[2]:22} accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  training {r['training_seconds']:.0f} s")
PY
}

prompt=(--kind prompt --template "Review: {text} Sentiment:" --label-words "positive= positive,negative= negative")

if [[ " $only " == *" encoder "* ]]; then
  pretrain encoder-general --input "${general[@]}" --kind encoder --preset tiny --epochs "$pretrain_epochs"
  pretrain encoder-dapt --input "$out/corpus/sst2-train.txt" --from "$out/encoder-general" --epochs "$dapt_epochs" --learning-rate 2e-4
  finetune encoder-general-head --model "$out/encoder-general" --kind encoder
  finetune encoder-dapt-head --model "$out/encoder-dapt" --kind encoder
fi

if [[ " $only " == *" decoder "* ]]; then
  pretrain decoder-general --input "${general[@]}" --kind decoder --preset tiny --epochs "$pretrain_epochs"
  pretrain decoder-dapt --input "$out/corpus/sst2-train.txt" --from "$out/decoder-general" --epochs "$dapt_epochs" --learning-rate 2e-4
  for model in decoder-general decoder-dapt; do
    finetune "$model-head" --model "$out/$model" --kind decoder
    finetune "$model-prompt" --model "$out/$model" "${prompt[@]}"
  done
fi

if [[ " $only " == *" shipped "* ]]; then
  pretrain shipped-dapt --input "$out/corpus/sst2-train.txt" --from builtin:gpt2-mini-gutenberg --epochs "$dapt_epochs" --learning-rate 2e-4
  for model in builtin:gpt2-mini-gutenberg "$out/shipped-dapt"; do
    tag=$([ "$model" = builtin:gpt2-mini-gutenberg ] && echo shipped || echo shipped-dapt)
    finetune "$tag-head" --model "$model" --kind decoder
    finetune "$tag-prompt" --model "$model" "${prompt[@]}"
    FT_EPOCHS=0 finetune "$tag-zero-shot" --model "$model" "${prompt[@]}" --calibrate
  done
fi
