using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>
/// What this CPU does with bfloat16: its instruction flags and a short same-process matrix-multiplication race between
/// bfloat16 and float32. Machines of the same kind differ (with AMX, bfloat16 multiplies several times faster than
/// float32; with AVX-512 BF16 alone it can be slower), so the choice of <c>Auto</c> precision is measured, not assumed.
/// </summary>
public sealed class BFloat16Support
{
    internal BFloat16Support(bool avx512Bf16, bool amxBf16, double float32Gflops, double bfloat16Gflops)
    {
        Avx512Bf16 = avx512Bf16;
        AmxBf16 = amxBf16;
        Float32Gflops = float32Gflops;
        BFloat16Gflops = bfloat16Gflops;
    }

    /// <summary>Whether <c>/proc/cpuinfo</c> lists <c>avx512_bf16</c> (false off Linux, where it is not read).</summary>
    public bool Avx512Bf16 { get; }

    /// <summary>Whether <c>/proc/cpuinfo</c> lists <c>amx_bf16</c>.</summary>
    public bool AmxBf16 { get; }

    /// <summary>Float32 matrix-multiplication speed measured by the probe, in GFLOP/s.</summary>
    public double Float32Gflops { get; }

    /// <summary>Bfloat16 matrix-multiplication speed measured by the probe, in GFLOP/s.</summary>
    public double BFloat16Gflops { get; }

    /// <summary>
    /// How much faster bfloat16 must multiply for <c>Auto</c> to choose it: mixed precision also converts the weights
    /// after each step and the gradients after each backward pass, and a 2-core probe wobbles by about 10 %.
    /// </summary>
    public const double RequiredSpeedup = 1.2;

    private const int ProbeSize = 1024, ProbeWarmups = 2, ProbeRepetitions = 5;

    private static readonly Lazy<BFloat16Support> s_current = new(Probe, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The probe's result for this process: measured on first use (about a tenth of a second), then cached.</summary>
    public static BFloat16Support Current => s_current.Value;

    /// <summary>Bfloat16 over float32 matrix-multiplication speed.</summary>
    public double Speedup => Float32Gflops > 0 ? BFloat16Gflops / Float32Gflops : 0;

    /// <summary>Whether bfloat16 multiplies at least <see cref="RequiredSpeedup"/> times faster than float32 here.</summary>
    public bool IsFaster => Speedup >= RequiredSpeedup;

    /// <summary>One line for logs and <c>info</c>: the flags, both speeds and the verdict.</summary>
    /// <returns>A description.</returns>
    public override string ToString() => FormattableString.Invariant(
        $"avx512_bf16 {(Avx512Bf16 ? "yes" : "no")}, amx_bf16 {(AmxBf16 ? "yes" : "no")}; matmul {ProbeSize}³ fp32 {Float32Gflops:F0} GFLOP/s, bf16 {BFloat16Gflops:F0} GFLOP/s ({Speedup:F2}×): bf16 {(IsFaster ? "faster" : "not faster")} here");

    private static BFloat16Support Probe()
    {
        TorchRuntime.EnsureInitialized();
        var flags = CpuFlags();
        var float32 = MatmulGflops(ScalarType.Float32);
        var bfloat16 = MatmulGflops(ScalarType.BFloat16);
        return new BFloat16Support(flags.Contains("avx512_bf16"), flags.Contains("amx_bf16"), float32, bfloat16);
    }

    /// <summary>The flags of the first processor in <c>/proc/cpuinfo</c>; empty where there is none.</summary>
    internal static HashSet<string> CpuFlags()
    {
        try
        {
            var line = File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))
                : null;
            return line is null ? [] : [.. line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        }
        catch (IOException)
        {
            return [];
        }
    }

    private static double MatmulGflops(ScalarType dtype)
    {
        // Its own generator: the probe must not move the global one a seeded training run draws from.
        using var scope = NewDisposeScope();
        using var generator = new Generator(0);
        var a = randn([ProbeSize, ProbeSize], generator: generator).to(dtype);
        var b = randn([ProbeSize, ProbeSize], generator: generator).to(dtype);
        var best = double.PositiveInfinity;
        for (var r = 0; r < ProbeWarmups + ProbeRepetitions; r++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                a.mm(b);
            }

            // The fastest repetition: on a shared machine, the slower ones measure the other processes.
            if (r >= ProbeWarmups)
            {
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
        }

        return 2.0 * ProbeSize * ProbeSize * ProbeSize / best / 1e9;
    }
}
