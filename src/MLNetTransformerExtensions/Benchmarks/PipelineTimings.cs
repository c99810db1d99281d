using System.Diagnostics;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>A stage of the ML.NET pipeline that <see cref="PipelineTimings"/> times.</summary>
internal enum PipelineStage
{
    /// <summary>Reading rows out of the input data view (text and labels into memory, or into a batch).</summary>
    ReadRows,

    /// <summary>Resolving the model folder and building the network (weights loaded or initialised).</summary>
    Setup,

    /// <summary>Turning texts into token ids.</summary>
    Tokenize,

    /// <summary>Grouping rows into batches, padding them and copying them into tensors.</summary>
    Batch,

    /// <summary>The network's forward pass (and the loss when training; softmax and reading probabilities out when scoring).</summary>
    Forward,

    /// <summary>The backward pass, including freeing the step's tensors.</summary>
    Backward,

    /// <summary>Gradient clipping, the optimizer step and zeroing the gradients.</summary>
    OptimizerStep,
}

/// <summary>
/// Process-wide accumulators of where a pipeline's time goes, for the pipeline benchmark. Off unless a
/// <see cref="Record"/> scope is open; when off, <see cref="Start"/> returns 0 and <see cref="Stop"/> does nothing, so
/// the instrumented code pays one volatile read per call. Calls are per batch (never per row) and allocate nothing.
/// </summary>
internal static class PipelineTimings
{
    private static readonly int s_stageCount = Enum.GetValues<PipelineStage>().Length;
    private static readonly long[] s_ticks = new long[s_stageCount];
    private static long s_batches;
    private static long s_tokens;
    private static long s_paddedTokens;
    private static volatile bool s_enabled;

    /// <summary>A timestamp to pass to <see cref="Stop"/>, or 0 when nothing is recording.</summary>
    public static long Start() => s_enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="stage"/>.</summary>
    public static void Stop(PipelineStage stage, long start)
    {
        if (start != 0)
        {
            Interlocked.Add(ref s_ticks[(int)stage], Stopwatch.GetTimestamp() - start);
        }
    }

    /// <summary>Counts one padded batch: its real tokens and its size after padding (rows × longest row).</summary>
    public static void CountBatch(long tokens, long paddedTokens)
    {
        if (s_enabled)
        {
            Interlocked.Increment(ref s_batches);
            Interlocked.Add(ref s_tokens, tokens);
            Interlocked.Add(ref s_paddedTokens, paddedTokens);
        }
    }

    /// <summary>Clears the accumulators and records until the returned scope is disposed. One recording at a time.</summary>
    public static IDisposable Record()
    {
        Reset();
        s_enabled = true;
        return new Recording();
    }

    /// <summary>What has accumulated since <see cref="Record"/> (or the last <see cref="Reset"/>).</summary>
    public static PipelineTimingSnapshot Snapshot()
    {
        var seconds = new double[s_stageCount];
        for (var i = 0; i < seconds.Length; i++)
        {
            seconds[i] = (double)Interlocked.Read(ref s_ticks[i]) / Stopwatch.Frequency;
        }

        return new PipelineTimingSnapshot(seconds, Interlocked.Read(ref s_batches), Interlocked.Read(ref s_tokens), Interlocked.Read(ref s_paddedTokens));
    }

    /// <summary>Clears the accumulators.</summary>
    public static void Reset()
    {
        for (var i = 0; i < s_ticks.Length; i++)
        {
            Interlocked.Exchange(ref s_ticks[i], 0);
        }

        Interlocked.Exchange(ref s_batches, 0);
        Interlocked.Exchange(ref s_tokens, 0);
        Interlocked.Exchange(ref s_paddedTokens, 0);
    }

    private sealed class Recording : IDisposable
    {
        public void Dispose() => s_enabled = false;
    }
}

/// <summary>Accumulated seconds per <see cref="PipelineStage"/>, and batch and token counts.</summary>
internal sealed record PipelineTimingSnapshot(IReadOnlyList<double> StageSeconds, long Batches, long Tokens, long PaddedTokens)
{
    public double this[PipelineStage stage] => StageSeconds[(int)stage];

    /// <summary>The difference between two snapshots: what accumulated in between.</summary>
    public PipelineTimingSnapshot Since(PipelineTimingSnapshot earlier) => new(
        [.. StageSeconds.Select((s, i) => s - earlier.StageSeconds[i])], Batches - earlier.Batches, Tokens - earlier.Tokens, PaddedTokens - earlier.PaddedTokens);
}
