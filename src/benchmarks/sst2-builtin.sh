#!/usr/bin/env bash
# The default model (builtin:all-MiniLM-L6-v2) fine-tuned on SST-2 train and evaluated on SST-2 dev through the
# CLI's ML.NET pipeline, with its training wall time, next to ML.NET's FeaturizeText + SdcaMaximumEntropy.
# Target: >= 87 % dev accuracy within 5 minutes of training on 2 cores.
#
#   bash src/benchmarks/sst2-builtin.sh [DATASETS_DIR] [RESULTS_DIR]      (EPOCHS, LR, MAXLEN override)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/datasets}"
out="${2:-$repo/src/benchmarks/results/sst2-builtin}"
mkdir -p "$out"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
dotnet "$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll" train \
    --data "$data/sst2/train.tsv" --test "$data/sst2/dev.tsv" --epochs "${EPOCHS:-3}" --learning-rate "${LR:-1e-4}" \
    --max-length "${MAXLEN:-64}" --batch-size 32 --seed 1 --output "$out/model.zip" --json > "$out/train.log" 2>&1
tail -n 1 "$out/train.log" > "$out/result.json"
python3 - "$out/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"builtin:all-MiniLM-L6-v2  SST-2 dev accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  "
      f"training {r['training_seconds']:.0f} s  | FeaturizeText + SdcaMaximumEntropy {r['baseline']['accuracy']:.4f}")
PY
