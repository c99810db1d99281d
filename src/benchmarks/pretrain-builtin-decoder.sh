#!/usr/bin/env bash
# Pretrains builtin:gpt2-mini-gutenberg, the decoder the library ships, exactly as it was made:
# a GPT-2-style model (the mini preset's 4 × 256 shape with a 6,000-token byte-level BPE vocabulary, so that the
# weights stay under 20 MB) trained from scratch with causal LM on NLTK's Project Gutenberg books (public domain)
# and the training splits of this project's own datasets (CC0), 6 epochs.
#
#   bash src/benchmarks/pretrain-builtin-decoder.sh [DATASETS_DIR] [OUTPUT_DIR]
#
# DATASETS_DIR holds gutenberg-nltk/ (default: ../shared/datasets beside the repository). About 40 minutes on 2 cores.
# To ship a new model, copy the output folder's files (not checkpoint/) into
# src/MLNetTransformerExtensions/Builtin/Models/gpt2-mini-gutenberg/ and update their SHA-256s in
# src/MLNetTransformerExtensions/Builtin/BuiltinModels.cs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
out="${2:-$repo/src/benchmarks/results/gpt2-mini-gutenberg}"
mkdir -p "$out/corpus"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
cli() { dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" "$@"; }

source "$repo/src/benchmarks/general-corpus.sh"
general_corpus "$data" "$out"

cli pretrain --input "${general[@]}" \
    --kind decoder --preset mini --vocab-size 6000 --epochs 6 --learning-rate 8e-4 --seed 1 --output "$out/model" --json
