using System.Diagnostics;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using TorchSharp;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>
/// A soak run of a fitted pipeline (a benchmark, not a test): first a long stream of rows through <c>Transform</c>,
/// then several threads scoring single rows for a while with a pool of <see cref="PredictionEngine{TSrc, TDst}"/>
/// (as Microsoft.Extensions.ML's <c>PredictionEnginePool</c> does, on Microsoft.Extensions.ObjectPool). Along the
/// way it samples the process's resident memory, open file handles, managed heap and live TorchSharp tensors, so
/// that growth in any of them shows as a slope.
/// </summary>
public static class SoakBenchmark
{
    /// <summary>Fits MapValueToKey → EncoderClassifier (or DecoderClassifier for GPT-2) → MapKeyToValue on the rows given.</summary>
    /// <param name="ml">The context.</param>
    /// <param name="rows">Training rows.</param>
    /// <param name="classifier">The classifier's options; its label and text columns are set here.</param>
    /// <param name="decoder">Whether the model is a decoder (GPT-2).</param>
    /// <returns>The fitted pipeline, whose input is <see cref="SoakRow"/>.</returns>
    public static ITransformer Fit(MLContext ml, IReadOnlyList<SoakRow> rows, TransformerClassifierOptions classifier, bool decoder)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(classifier);
        classifier.LabelColumnName = nameof(SoakRow.Label);
        classifier.TextColumnName = nameof(SoakRow.Text);
        classifier.PredictedLabelColumnName = "PredictedLabelKey";
        var trainer = decoder
            ? ml.MulticlassClassification.Trainers.DecoderClassifier((DecoderClassifierOptions)classifier)
            : ml.MulticlassClassification.Trainers.EncoderClassifier((EncoderClassifierOptions)classifier);
        var pipeline = ml.Transforms.Conversion.MapValueToKey(nameof(SoakRow.Label))
            .Append(trainer)
            .Append(ml.Transforms.Conversion.MapKeyToValue(nameof(SoakPrediction.PredictedLabel), "PredictedLabelKey"));
        return pipeline.Fit(ml.Data.LoadFromEnumerable(rows));
    }

    /// <summary>Streams rows through <paramref name="model"/>, then scores from several threads with a pool of engines.</summary>
    /// <param name="ml">The context the model was fitted or loaded in.</param>
    /// <param name="model">A fitted pipeline whose input is <see cref="SoakRow"/>.</param>
    /// <param name="texts">Texts the stream and the threads cycle through.</param>
    /// <param name="options">How long, how many threads, how often to sample.</param>
    /// <param name="progress">Receives every sample as it is taken.</param>
    /// <param name="cancellationToken">Ends the current phase early; what was measured is returned.</param>
    /// <returns>The samples of both phases.</returns>
    public static SoakResult Run(MLContext ml, ITransformer model, IReadOnlyList<string> texts, SoakOptions options,
        IProgress<SoakSample>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (texts.Count == 0)
        {
            throw new ArgumentException("The soak needs at least one text to score.", nameof(texts));
        }

        var clock = Stopwatch.StartNew();
        var samples = new List<SoakSample>();
        void Sample(SoakPhase phase, long rows)
        {
            var sample = SoakSample.Take(phase, rows, clock.Elapsed.TotalSeconds);
            samples.Add(sample);
            progress?.Report(sample);
        }

        Sample(SoakPhase.Start, 0);
        var streamed = Stream(ml, model, texts, options, Sample, cancellationToken);
        var scored = Score(ml, model, texts, options, Sample, cancellationToken);
        return new SoakResult(streamed, scored, options.Threads, samples);
    }

    private static long Stream(MLContext ml, ITransformer model, IReadOnlyList<string> texts, SoakOptions options,
        Action<SoakPhase, long> sample, CancellationToken cancellationToken)
    {
        var stream = new CyclingTextDataView(nameof(SoakRow.Text), texts, nameof(SoakRow.Label), [.. texts.Select(_ => string.Empty)], options.StreamRows);
        var scored = model.Transform(stream);
        var probability = scored.Schema["Score"];
        using var cursor = scored.GetRowCursor([probability]);
        var getter = cursor.GetGetter<VBuffer<float>>(probability);
        var value = default(VBuffer<float>);
        long rows = 0;
        while (!cancellationToken.IsCancellationRequested && cursor.MoveNext())
        {
            getter(ref value);
            if (++rows % options.StreamSampleEvery == 0)
            {
                sample(SoakPhase.Streaming, rows);
            }
        }

        sample(SoakPhase.Streaming, rows);
        return rows;
    }

    private static long Score(MLContext ml, ITransformer model, IReadOnlyList<string> texts, SoakOptions options,
        Action<SoakPhase, long> sample, CancellationToken cancellationToken)
    {
        var pool = new DefaultObjectPool<PredictionEngine<SoakRow, SoakPrediction>>(new EnginePolicy(ml, model), options.Threads);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long rows = 0;
        var workers = Enumerable.Range(0, options.Threads).Select(t => Task.Factory.StartNew(() =>
        {
            var next = t;
            var row = new SoakRow();
            while (!stop.IsCancellationRequested)
            {
                var engine = pool.Get();
                try
                {
                    row.Text = texts[next % texts.Count];
                    engine.Predict(row);
                }
                finally
                {
                    pool.Return(engine);
                }

                next += options.Threads;
                Interlocked.Increment(ref rows);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        var end = DateTime.UtcNow + options.Duration;
        while (DateTime.UtcNow < end && !cancellationToken.IsCancellationRequested && !workers.Any(w => w.IsFaulted))
        {
            try
            {
                // Wakes at the next sample, or at once when a worker fails or the caller cancels.
                Task.WaitAny(workers, (int)Min(options.SampleInterval, end - DateTime.UtcNow).TotalMilliseconds, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            sample(SoakPhase.Scoring, Interlocked.Read(ref rows));
        }

        stop.Cancel();
        Task.WaitAll(workers);
        (pool as IDisposable)?.Dispose();
        sample(SoakPhase.Scoring, rows);
        return rows;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? (a < TimeSpan.Zero ? TimeSpan.Zero : a) : (b < TimeSpan.Zero ? TimeSpan.Zero : b);

    /// <summary>Creates engines for the pool, as Microsoft.Extensions.ML's pool policy does; every engine comes back (a PredictionEngine is reusable after any row).</summary>
    private sealed class EnginePolicy(MLContext ml, ITransformer model) : PooledObjectPolicy<PredictionEngine<SoakRow, SoakPrediction>>
    {
        // Not owning the model: by default an engine disposes the model it was made from when it is disposed itself.
        public override PredictionEngine<SoakRow, SoakPrediction> Create() =>
            ml.Model.CreatePredictionEngine<SoakRow, SoakPrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });

        public override bool Return(PredictionEngine<SoakRow, SoakPrediction> obj) => true;
    }
}

/// <summary>A row of the soak's pipeline.</summary>
public sealed class SoakRow
{
    /// <summary>The text to classify.</summary>
    public string Text { get; set; } = string.Empty;

    /// <summary>The label (empty when scoring).</summary>
    public string Label { get; set; } = string.Empty;
}

/// <summary>What the soak's pipeline answers for a row.</summary>
public sealed class SoakPrediction
{
    /// <summary>The class probabilities.</summary>
    public float[] Score { get; set; } = [];

    /// <summary>The predicted class name.</summary>
    public string PredictedLabel { get; set; } = string.Empty;
}

/// <summary>How long and how hard the soak runs.</summary>
public sealed record SoakOptions
{
    /// <summary>Rows streamed through <c>Transform</c> (the texts, cycled; never held in memory).</summary>
    public long StreamRows { get; init; } = 1_000_000;

    /// <summary>Rows between two samples of the stream.</summary>
    public int StreamSampleEvery { get; init; } = 10_000;

    /// <summary>Threads scoring single rows with pooled prediction engines.</summary>
    public int Threads { get; init; } = 8;

    /// <summary>How long the threads score.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Time between two samples while the threads score.</summary>
    public TimeSpan SampleInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(StreamRows, nameof(StreamRows));
        ArgumentOutOfRangeException.ThrowIfLessThan(StreamSampleEvery, 1, nameof(StreamSampleEvery));
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfNegative(Duration.Ticks, nameof(Duration));
        ArgumentOutOfRangeException.ThrowIfLessThan(SampleInterval.Ticks, TimeSpan.TicksPerMillisecond, nameof(SampleInterval));
    }
}

/// <summary>The phase a sample was taken in.</summary>
public enum SoakPhase
{
    /// <summary>Before anything was scored.</summary>
    Start,

    /// <summary>While rows stream through <c>Transform</c>.</summary>
    Streaming,

    /// <summary>While threads score with pooled prediction engines.</summary>
    Scoring,
}

/// <summary>One reading of the process's counters.</summary>
/// <param name="Phase">The phase.</param>
/// <param name="Rows">Rows scored so far in this phase.</param>
/// <param name="Seconds">Seconds since the soak began.</param>
/// <param name="ResidentMegabytes">Resident memory (Linux <c>VmRSS</c>), MiB.</param>
/// <param name="ManagedMegabytes">The managed heap as the GC last counted it (no collection forced), MiB.</param>
/// <param name="OpenHandles">Open file descriptors (<c>/proc/self/fd</c>; the handle count elsewhere).</param>
/// <param name="LiveTensors">TorchSharp tensors alive in the process.</param>
public readonly record struct SoakSample(SoakPhase Phase, long Rows, double Seconds, double ResidentMegabytes, double ManagedMegabytes, int OpenHandles, long LiveTensors)
{
    internal static SoakSample Take(SoakPhase phase, long rows, double seconds) =>
        new(phase, rows, seconds, ProcessMemory.Read().ResidentMegabytes, GC.GetTotalMemory(forceFullCollection: false) / 1048576.0,
            OpenHandleCount(), torch.Tensor.TotalCount);

    private static int OpenHandleCount()
    {
        const string fds = "/proc/self/fd";
        if (OperatingSystem.IsLinux() && Directory.Exists(fds))
        {
            return Directory.EnumerateFileSystemEntries(fds).Count();
        }

        using var process = Process.GetCurrentProcess();
        return process.HandleCount;
    }
}

/// <summary>What a soak run measured.</summary>
/// <param name="StreamedRows">Rows streamed through <c>Transform</c>.</param>
/// <param name="ScoredRows">Rows scored by the threads.</param>
/// <param name="Threads">Threads that scored.</param>
/// <param name="Samples">Every sample, in order.</param>
public sealed record SoakResult(long StreamedRows, long ScoredRows, int Threads, IReadOnlyList<SoakSample> Samples)
{
    /// <summary>
    /// How a counter moved over the second half of a phase (the first half includes warm-up: the pools, caches and
    /// allocator arenas filling): its first and last value there, its largest, and its least-squares slope per minute.
    /// </summary>
    /// <param name="phase">The phase.</param>
    /// <param name="counter">The counter of a sample.</param>
    /// <returns>The trend, or null when the phase has fewer than four samples.</returns>
    public SoakTrend? Trend(SoakPhase phase, Func<SoakSample, double> counter)
    {
        ArgumentNullException.ThrowIfNull(counter);
        var all = Samples.Where(s => s.Phase == phase).ToList();
        if (all.Count < 4)
        {
            return null;
        }

        var half = all.Skip(all.Count / 2).ToList();
        var meanTime = half.Average(s => s.Seconds);
        var meanValue = half.Average(counter);
        var covariance = half.Sum(s => (s.Seconds - meanTime) * (counter(s) - meanValue));
        var variance = half.Sum(s => (s.Seconds - meanTime) * (s.Seconds - meanTime));
        return new SoakTrend(counter(half[0]), counter(half[^1]), half.Max(counter), variance == 0 ? 0 : covariance / variance * 60);
    }
}

/// <summary>A counter's course over the second half of a phase.</summary>
/// <param name="First">Its value at the start of the second half.</param>
/// <param name="Last">Its last value.</param>
/// <param name="Max">Its largest value.</param>
/// <param name="SlopePerMinute">Its least-squares slope, per minute.</param>
public readonly record struct SoakTrend(double First, double Last, double Max, double SlopePerMinute);
