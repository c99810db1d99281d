#!/usr/bin/env bash
# End to end through the ML.NET pipeline on SST-2: Fit for one epoch on train.tsv, Transform + Evaluate on dev.tsv,
# then 100,000 rows streamed through the fitted pipeline while memory is sampled. Prints a table and writes
# src/benchmarks/results/<commit>-pipeline-<model>.json (ignored by git), so runs can be compared across commits.
#
#   bash src/benchmarks/pipeline.sh [DATASETS_DIR]
#   MODEL=builtin:all-MiniLM-L6-v2 THREADS=1 bash src/benchmarks/pipeline.sh
#
# MODEL (default nasbert-size: a BERT of ML.NET NAS-BERT's size, random weights, vocabulary trained on train.tsv),
# EPOCHS, BATCH, MAXLEN, LR, STREAM_ROWS, THREADS, PRECISION (fp32 or bf16 scoring) override the settings. DATASETS_DIR holds sst2/{train,dev}.tsv
# (default: ../shared/datasets beside the repository).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
results="$repo/src/benchmarks/results"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
model="${MODEL:-nasbert-size}"
extra=()
suffix=""
if [[ -n "${THREADS:-}" ]]; then extra+=(--threads "$THREADS"); fi
if [[ -n "${PRECISION:-}" ]]; then extra+=(--precision "$PRECISION"); suffix="-$PRECISION"; fi

mkdir -p "$results"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v quiet -nologo >/dev/null
cli="$(find "$repo/src/MLNetTransformerExtensions.Cli/bin/Release" -name mlnet-transformers.dll | head -n 1)"
dotnet "$cli" bench pipeline --data "$data/sst2/train.tsv" --test "$data/sst2/dev.tsv" --model "$model" \
    --epochs "${EPOCHS:-1}" --batch-size "${BATCH:-32}" --max-length "${MAXLEN:-128}" --learning-rate "${LR:-5e-4}" \
    --stream-rows "${STREAM_ROWS:-100000}" "${extra[@]}" --json "$results/$commit-pipeline-${model//[^A-Za-z0-9._-]/_}$suffix.json"
