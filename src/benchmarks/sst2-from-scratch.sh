#!/usr/bin/env bash
# SST-2 from scratch: a small encoder (BERT-style) and a small decoder (GPT-2-style), each with a vocabulary
# trained on the SST-2 training text only, fine-tuned with the head strategy (and the decoder also with the
# prompt strategy) through the CLI's ML.NET pipeline, evaluated on SST-2 dev next to ML.NET's
# FeaturizeText + SdcaMaximumEntropy on the same split.
#
#   bash src/benchmarks/sst2-from-scratch.sh [DATASETS_DIR] [RESULTS_DIR]
#
# DATASETS_DIR holds sst2/{train,dev}.tsv (default: ../shared/datasets beside the repository).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
out="${2:-$repo/src/benchmarks/results/sst2-from-scratch}"
epochs="${EPOCHS:-5}"
mkdir -p "$out"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
cli() { dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" "$@"; }

# Vocabularies from the training split's own text (never dev or test).
cut -f2 "$data/sst2/train.tsv" | tail -n +2 > "$out/train-text.txt"
cli vocab --input "$out/train-text.txt" --kind wordpiece --size 8000 --output "$out/encoder" >/dev/null
cli vocab --input "$out/train-text.txt" --kind bpe --size 8000 --output "$out/decoder" >/dev/null

# Config-only folders: no weights, so training starts from HuggingFace's random initialisation.
cat > "$out/encoder/config.json" <<JSON
{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 8000, "hidden_size": 256,
 "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024, "max_position_embeddings": 128,
 "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
 "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "pad_token_id": 0}
JSON
cat > "$out/decoder/config.json" <<JSON
{"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"], "vocab_size": 8000, "n_embd": 256,
 "n_layer": 4, "n_head": 4, "n_positions": 128, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
 "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "initializer_range": 0.02,
 "bos_token_id": 7999, "eos_token_id": 7999}
JSON

run() {
  local name="$1"; shift
  local start=$(date +%s.%N)
  cli train --data "$data/sst2/train.tsv" --test "$data/sst2/dev.tsv" --epochs "$epochs" --batch-size 32 \
      --max-length 64 --seed 1 --output "$out/$name.zip" --json "$@" > "$out/$name.log" 2>&1
  local end=$(date +%s.%N)
  tail -n 1 "$out/$name.log" > "$out/$name.json"
  python3 - "$out/$name.json" "$name" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
print(f"{name:18} dev accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  training {r['training_seconds']:.0f} s"
      f"  ({6920 * int(__import__('os').environ.get('EPOCHS', '5')) / r['training_seconds']:.0f} seq/s)"
      + (f"  | SDCA baseline {r['baseline']['accuracy']:.4f}" if 'baseline' in r else ""))
PY
}

run encoder-head --model "$out/encoder" --kind encoder --learning-rate 5e-4
run decoder-head --model "$out/decoder" --kind decoder --learning-rate 5e-4 --no-baseline
run decoder-prompt --model "$out/decoder" --kind prompt --learning-rate 5e-4 --no-baseline \
    --template "Review: {text} Sentiment:" --label-words "positive= positive,negative= negative"
