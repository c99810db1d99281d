#!/usr/bin/env bash
# Issue 23: fp32 vs bf16 (mixed-precision) training and inference in ONE run and ONE report, beside its references:
# our `bench` for bert-mini and the built-in MiniLM at batch 32 x 128 in fp32 and bf16 (seq/s, MFU, the fp32 and bf16
# matmul ceilings, peak RSS, the bf16 probe, and `--profile`: where a training step's time goes), HuggingFace's
# bench_hf.py (bert-mini, PyTorch 1.13 + OpenBLAS: an old baseline) and ONNX Runtime running the built-in MiniLM (the
# embeddings benchmark's throughput mode).
#
#   HF_BENCH=/path/to/bench_hf.py bash src/benchmarks/precision.sh [RESULTS_DIR] [DATASETS_DIR]
#
# HF_BENCH is the reference harness's script (see its README; a clone of this repository does not carry it); without
# it the HuggingFace rows are skipped. STEPS (default 10) sets the timed steps of every bench. Run it on an idle
# machine: the report is for ratios within the run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$repo/src/benchmarks/results/precision}"
datasets="${2:-$repo/../shared/datasets}"
steps="${STEPS:-10}"
mkdir -p "$out"
dotnet build "$repo/src/MLNetTransformerExtensions.Cli" -c Release -v q >/dev/null
cli="$repo/src/MLNetTransformerExtensions.Cli/bin/Release/net10.0/linux-x64/mlnet-transformers.dll"

for config in bert-mini builtin:all-MiniLM-L6-v2; do
    name="${config#builtin:}"
    for precision in fp32 bf16; do
        echo "bench $config $precision..." >&2
        nice -n 10 dotnet "$cli" bench --config "$config" --batch-size 32 --seq-len 128 --steps "$steps" \
            --precision "$precision" --profile --json "$out/bench-$name-$precision.json" > "$out/bench-$name-$precision.log" 2>&1
    done
done

if [[ -n "${HF_BENCH:-}" ]]; then
    echo "HuggingFace bench_hf.py..." >&2
    nice -n 10 /usr/bin/python3 "$HF_BENCH" --steps "$steps" --out "$out/hf.json" > "$out/hf.log" 2>&1
fi

if [[ -d "$datasets" ]]; then
    echo "ONNX Runtime vs ours, built-in MiniLM embeddings..." >&2
    bash "$repo/src/benchmarks/embeddings/run.sh" throughput 2000 > "$out/onnxruntime.txt" 2>&1 || echo "embeddings benchmark failed; see $out/onnxruntime.txt" >&2
fi

python3 - "$out" <<'PY' | tee "$out/report.md"
import json, os, sys
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
print("| model | precision | inference seq/s | training seq/s | training MFU (fp32 ceiling) | fp32 / bf16 matmul GFLOP/s | peak RSS MB | other CPU % |")
print("|---|---|---|---|---|---|---|---|")
for name in ["bert-mini", "all-MiniLM-L6-v2"]:
    rows = {p: load(f"bench-{name}-{p}.json") for p in ["fp32", "bf16"]}
    for p, r in rows.items():
        if r is None:
            print(f"| {name} | {p} | (failed: see bench-{name}-{p}.log) | | | | | |")
            continue
        bf16 = r.get("matmul_gflops_bf16")
        print(f"| {name} | {r.get('training_precision', p)} | {r.get('inference_seq_per_s')} | {r.get('training_seq_per_s')} | "
              f"{r.get('training_mfu')} | {r.get('matmul_gflops')} / {bf16 if bf16 is not None else '-'} | {r.get('peak_rss_mb', '-')} | "
              f"{r.get('training_other_cpu_percent')} |")
    if rows["fp32"] and rows["bf16"] and rows["bf16"].get("matmul_gflops_bf16"):
        speedup = rows["bf16"]["training_seq_per_s"] / rows["fp32"]["training_seq_per_s"]
        ceiling = rows["bf16"]["matmul_gflops_bf16"] / rows["bf16"]["matmul_gflops"]
        print(f"\n{name}: bf16/fp32 training {speedup:.2f}x against a bf16/fp32 matmul ceiling ratio of {ceiling:.2f}x "
              f"({speedup / ceiling:.0%} of it; the issue's target is 60 %).\n")
probe = (load("bench-bert-mini-bf16.json") or {}).get("bf16_probe")
if probe:
    print(f"bf16 probe: {json.dumps(probe)}\n")
hf = load("hf.json")
if hf:
    for r in hf.get("results", []):
        print(f"HuggingFace (PyTorch 1.13, OpenBLAS) {r['model']}: inference {r['inference']['sequences_per_s']:.1f} seq/s, "
              f"training {r['training']['sequences_per_s']:.1f} seq/s")
for name in ["bert-mini", "all-MiniLM-L6-v2"]:
    profiles = {p: (load(f"bench-{name}-{p}.json") or {}).get("training_profile") for p in ["fp32", "bf16"]}
    if not all(profiles.values()):
        continue
    fp32, bf16 = profiles["fp32"], profiles["bf16"]
    print(f"\nWhere a training step's time goes, {name} (ms, medians; `bench --profile`):\n")
    print("| part | fp32 | bf16 | bf16 / fp32 |")
    print("|---|---|---|---|")
    print(f"| whole step | {fp32['step_ms']} | {bf16['step_ms']} | {bf16['step_ms'] / fp32['step_ms']:.2f} |")
    for group in ["phases_ms", "layer_operations_ms"]:
        for part in dict.fromkeys(list(fp32[group]) + list(bf16[group])):
            a, b = fp32[group].get(part), bf16[group].get(part)
            ratio = f"{b / a:.2f}" if a and b else "-"
            label = part if group == "phases_ms" else f"layers: {part}"
            print(f"| {label} | {a if a is not None else '-'} | {b if b is not None else '-'} | {ratio} |")
ort = os.path.join(out, "onnxruntime.txt")
if os.path.exists(ort):
    print("\nONNX Runtime vs ours (built-in MiniLM embeddings):\n")
    print("".join("    " + line for line in open(ort).readlines()[-12:]))
PY
