using System.Diagnostics.Metrics;
using MLNetTransformerExtensions.Diagnostics;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>A stage of the ML.NET pipeline that <see cref="PipelineTimings"/> sums.</summary>
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
/// Sums of where a pipeline's time goes, for the pipeline benchmark, read from the library's meter
/// (<see cref="TransformerTelemetry.Name"/>) with a <see cref="MeterListener"/> as dotnet-counters or OpenTelemetry
/// would. The listener runs only while a <see cref="Record"/> scope is open: outside one the library's instruments are
/// disabled and it measures nothing. One recording at a time.
/// </summary>
internal static class PipelineTimings
{
    private static readonly int s_stageCount = Enum.GetValues<PipelineStage>().Length;
    private static readonly Dictionary<Instrument, PipelineStage> s_stages = new()
    {
        [TransformerTelemetry.ReadRows] = PipelineStage.ReadRows,
        [TransformerTelemetry.Setup] = PipelineStage.Setup,
        [TransformerTelemetry.Tokenization] = PipelineStage.Tokenize,
        [TransformerTelemetry.Batching] = PipelineStage.Batch,
        [TransformerTelemetry.Forward] = PipelineStage.Forward,
        [TransformerTelemetry.Backward] = PipelineStage.Backward,
        [TransformerTelemetry.OptimizerStep] = PipelineStage.OptimizerStep,
    };

    // Seconds are summed as ticks of 100 ns in longs, so Interlocked keeps concurrent recordings exact.
    private static readonly long[] s_ticks = new long[s_stageCount];
    private static long s_batches;
    private static long s_tokens;
    private static long s_paddedTokens;

    /// <summary>Clears the sums and listens to the library's meter until the returned scope is disposed.</summary>
    public static IDisposable Record()
    {
        Reset();
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == TransformerTelemetry.Name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>(OnSeconds);
        listener.SetMeasurementEventCallback<long>(OnCount);
        listener.Start();
        return listener;
    }

    /// <summary>What has accumulated since <see cref="Record"/> (or the last <see cref="Reset"/>).</summary>
    public static PipelineTimingSnapshot Snapshot()
    {
        var seconds = new double[s_stageCount];
        for (var i = 0; i < seconds.Length; i++)
        {
            seconds[i] = Interlocked.Read(ref s_ticks[i]) / (double)TimeSpan.TicksPerSecond;
        }

        return new PipelineTimingSnapshot(seconds, Interlocked.Read(ref s_batches), Interlocked.Read(ref s_tokens), Interlocked.Read(ref s_paddedTokens));
    }

    /// <summary>Clears the sums.</summary>
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

    private static void OnSeconds(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (s_stages.TryGetValue(instrument, out var stage))
        {
            Interlocked.Add(ref s_ticks[(int)stage], (long)Math.Round(seconds * TimeSpan.TicksPerSecond));
        }
    }

    private static void OnCount(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (instrument == TransformerTelemetry.Batches)
        {
            Interlocked.Add(ref s_batches, value);
        }
        else if (instrument == TransformerTelemetry.Tokens)
        {
            Interlocked.Add(ref s_tokens, value);
        }
        else if (instrument == TransformerTelemetry.PaddedTokens)
        {
            Interlocked.Add(ref s_paddedTokens, value);
        }
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
