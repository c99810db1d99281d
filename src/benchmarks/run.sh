#!/usr/bin/env bash
# Runs the bench command for bert-mini and gpt2-mini and writes one JSON file per run into src/benchmarks/results/
# (ignored by git), named after the commit, the config and the run number, so runs can be compared across commits.
#
#   src/benchmarks/run.sh                    # 2 runs per config, batch 32 × 128 tokens, all cores
#   RUNS=3 THREADS=1 src/benchmarks/run.sh   # other settings through the environment
#
# Tokenization is measured when the text file exists and a tokenizer is given for the config (a model folder or hub
# id whose vocabulary matches: BERT's uncased WordPiece for bert-mini, GPT-2's BPE for gpt2-mini):
#   BERT_TOKENIZER=path/to/bert-folder GPT2_TOKENIZER=path/to/gpt2-folder src/benchmarks/run.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-2}"
text="${TEXT:-$repo/../shared/datasets/sst2/train.tsv}"
results="$repo/src/benchmarks/results"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
extra=()
if [[ -n "${THREADS:-}" ]]; then extra+=(--threads "$THREADS"); fi
if [[ -n "${STEPS:-}" ]]; then extra+=(--steps "$STEPS"); fi

mkdir -p "$results"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v quiet -nologo >/dev/null
cli="$(find "$repo/src/MLNetTransformerExtensions.Cli/bin/Release" -name mlnet-transformers.dll | head -n 1)"

for config in bert-mini gpt2-mini; do
  case "$config" in
    bert-mini) variable=BERT_TOKENIZER ;;
    gpt2-mini) variable=GPT2_TOKENIZER ;;
  esac
  tokenizer="${!variable:-}"
  tokenization=()
  if [[ -f "$text" && -n "$tokenizer" ]]; then
    tokenization=(--text "$text" --tokenizer "$tokenizer")
  elif [[ -f "$text" ]]; then
    echo "note: $variable is not set, so tokenization is not measured for $config" >&2
  fi

  for run in $(seq 1 "$runs"); do
    dotnet "$cli" bench --config "$config" --json "$results/$commit-$config-$run.json" "${extra[@]}" "${tokenization[@]}"
  done
done
