#!/usr/bin/env bash
# Export to ONNX and score with ONNX Runtime, against TorchSharp, through the CLI's ML.NET pipeline on SST-2 dev:
# builtin:all-MiniLM-L6-v2 fine-tuned on SST-2 train, and a bert-mini-size encoder (4 layers, hidden 256) trained from
# scratch with its own 8000-piece WordPiece vocabulary. For each: TorchSharp fp32 and bf16 (the model file), ONNX
# Runtime fp32 and int8 (exported folders): dev accuracy, rows/s, peak resident memory of the process, file sizes.
# Every configuration is scored in a fresh process, one after another in the same run (compare ratios, not absolutes,
# on a shared machine).
#
#   bash src/benchmarks/onnx-export.sh [DATASETS_DIR] [RESULTS_DIR]
#   (override: MINILM_EPOCHS, MINI_EPOCHS, MAXLEN, TRAIN_ROWS = the first N rows of SST-2 train, for a loaded machine)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
out="${2:-$repo/src/benchmarks/results/onnx-export}"
maxlen="${MAXLEN:-64}"
mkdir -p "$out"
train="$data/sst2/train.tsv"
if [ -n "${TRAIN_ROWS:-}" ]; then
  head -n "$((TRAIN_ROWS + 1))" "$data/sst2/train.tsv" > "$out/train.tsv"
  train="$out/train.tsv"
fi
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
cli() { dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" "$@"; }

results="$out/results.tsv"
printf 'model\truntime\tprecision\taccuracy\trows_per_s\tpeak_rss_mb\tmodel_bytes\n' > "$results"

train_minilm() {
  cli train --data "$train" --epochs "${MINILM_EPOCHS:-1}" --learning-rate 1e-4 \
      --max-length "$maxlen" --batch-size 32 --seed 1 --output "$out/minilm/model.zip" --json > "$out/minilm/train.log" 2>&1
}

train_bert_mini() {
  cut -f2 "$data/sst2/train.tsv" | tail -n +2 > "$out/bert-mini/train-text.txt"
  cli vocab --input "$out/bert-mini/train-text.txt" --kind wordpiece --size 8000 --output "$out/bert-mini/encoder" >/dev/null
  cat > "$out/bert-mini/encoder/config.json" <<JSON
{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 8000, "hidden_size": 256,
 "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024, "max_position_embeddings": 128,
 "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
 "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "pad_token_id": 0}
JSON
  cli train --data "$train" --model "$out/bert-mini/encoder" --epochs "${MINI_EPOCHS:-3}" \
      --learning-rate 5e-4 --max-length "$maxlen" --batch-size 32 --seed 1 --output "$out/bert-mini/model.zip" --json > "$out/bert-mini/train.log" 2>&1
}

for model in minilm bert-mini; do
  dir="$out/$model"
  mkdir -p "$dir"
  # Trained once (skipped when the model file exists).
  [ -f "$dir/model.zip" ] || { [ "$model" = minilm ] && train_minilm || train_bert_mini; }
  rm -rf "$dir/onnx" "$dir/int8"
  cli export --model "$dir/model.zip" --output "$dir/onnx" >/dev/null
  cli export --model "$dir/model.zip" --output "$dir/int8" --quantize int8 >/dev/null
  run() { # runtime precision model-path size-file extra-args...
    local runtime=$1 precision=$2 path=$3 size=$4; shift 4
    /usr/bin/time -v -o "$dir/time-$runtime-$precision.txt" \
      dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" \
      evaluate --model "$path" --data "$data/sst2/dev.tsv" --json "$@" > "$dir/eval-$runtime-$precision.log" 2>&1
    python3 - "$dir/eval-$runtime-$precision.log" "$dir/time-$runtime-$precision.txt" "$model" "$runtime" "$precision" "$size" >> "$results" <<'PY'
import json, os, re, sys
log, timing, model, runtime, precision, size = sys.argv[1:]
r = json.loads(open(log).read().strip().splitlines()[-1])
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(timing).read()).group(1)) / 1024
print(f"{model}\t{runtime}\t{precision}\t{r['accuracy']:.4f}\t{r['rows_per_second']:.1f}\t{rss:.0f}\t{os.path.getsize(size)}")
PY
  }
  # The comparisons that matter most first: TorchSharp fp32 against ONNX Runtime fp32 and int8.
  run torchsharp fp32 "$dir/model.zip" "$dir/model.zip" --precision fp32
  run onnxruntime fp32 "$dir/onnx" "$dir/onnx/model.onnx"
  run onnxruntime int8 "$dir/int8" "$dir/int8/model.onnx"
  run torchsharp bf16 "$dir/model.zip" "$dir/model.zip" --precision bf16
done
column -t -s $'\t' "$results"
