#!/bin/bash
# Sentence-embedding benchmarks (issue 18), niced: the machine may be shared.
#   src/benchmarks/embeddings/run.sh throughput [ROWS]
#   src/benchmarks/embeddings/run.sh fewshot SHOTS DRAWS [EVAL_ROWS] [DATASETS]   e.g. fewshot 8 5 400 sst2,trec,ag_news
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
datasets="${DATASETS:-$here/../../../../shared/datasets}"
dotnet build "$here/Embeddings.csproj" -c Release >/dev/null
exec nice -n 10 dotnet "$here/bin/Release/net10.0/linux-x64/Embeddings.dll" "$1" "$datasets" "${@:2}"
