using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Tokenization.Vocabulary;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>
/// Measures a transformer classifier end to end through an ML.NET pipeline, so that costs outside the network show:
/// <c>MapValueToKey</c> → <c>EncoderClassifier</c> (or <c>DecoderClassifier</c> for GPT-2) → <c>MapKeyToValue</c>
/// trained with <c>Fit</c>, then <c>Transform</c> + <c>Evaluate</c> on test data, then a stream of many rows scored
/// through the fitted pipeline while resident memory is sampled. Each phase reports its wall time, the time spent
/// inside the network (forward, backward and optimizer step), and where the rest went (reading rows, building the
/// model, tokenizing, batching, and the remainder: ML.NET's own transforms, evaluation, output columns).
/// </summary>
/// <remarks>
/// The inside/outside split comes from timers in the library's training loop and scoring path, switched on only while
/// a benchmark runs: a few timestamps per batch, never per row. Phases run one after another in this process; the
/// peak resident memory of each is measured on its own where Linux allows it (see <see cref="ProcessMemory.TryResetPeak"/>).
/// </remarks>
public static class PipelineBenchmark
{
    /// <summary>The predicted key column inside the pipeline; <c>MapKeyToValue</c> turns it into <c>PredictedLabel</c>.</summary>
    private const string PredictedKeyColumn = "PredictedLabelKey";

    /// <summary>
    /// Writes a trainable model folder for a preset of <see cref="ModelBenchmark.PresetNames"/>: a vocabulary trained on
    /// <paramref name="texts"/> (WordPiece for BERT presets, byte-level BPE for GPT-2 ones, at most the preset's
    /// embedding rows) and the preset's config.json, without weights, so training starts from random weights. The
    /// embedding table keeps the preset's row count even when the texts yield a smaller vocabulary, so the parameter
    /// count (and the optimizer's work) is the preset's.
    /// </summary>
    /// <param name="preset">A preset name.</param>
    /// <param name="texts">Texts to train the vocabulary on (the training split's, never the test split's).</param>
    /// <param name="folder">The folder to write (created if missing).</param>
    /// <returns>The trained vocabulary's size.</returns>
    /// <exception cref="ArgumentException"><paramref name="preset"/> is not a preset, or there are no texts.</exception>
    public static int CreatePresetFolder(string preset, IEnumerable<string> texts, string folder)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var json = ModelBenchmark.PresetJson(preset)
            ?? throw new ArgumentException($"'{preset}' is not a preset; the presets are {string.Join(", ", ModelBenchmark.PresetNames)}.", nameof(preset));
        var config = TransformerConfig.Parse((System.Text.Json.Nodes.JsonObject)json.DeepClone(), $"the {preset} preset");
        Directory.CreateDirectory(folder);
        var textFile = Path.Combine(folder, "vocabulary-input.txt");
        File.WriteAllLines(textFile, texts.Where(t => !string.IsNullOrWhiteSpace(t)));
        try
        {
            if (new FileInfo(textFile).Length == 0)
            {
                throw new ArgumentException($"There are no non-empty texts to train the {preset} preset's vocabulary on.", nameof(texts));
            }

            var decoder = config.Family == ModelFamily.Gpt2;
            var summary = VocabularyTrainer.Train([textFile], folder, new VocabularyTrainingOptions
            {
                Kind = decoder ? VocabularyKind.ByteLevelBpe : VocabularyKind.WordPiece,
                VocabularySize = config.VocabSize,
                ModelMaxLength = config.MaxPositions,
            });
            if (decoder)
            {
                // Byte-level BPE puts <|endoftext|> last; GPT-2 uses it to begin, end and pad.
                json["bos_token_id"] = summary.VocabularySize - 1;
                json["eos_token_id"] = summary.VocabularySize - 1;
            }

            File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString());
            return summary.VocabularySize;
        }
        finally
        {
            File.Delete(textFile);
        }
    }

    /// <summary>Runs the three phases: training, scoring the test data with evaluation, and streaming.</summary>
    /// <param name="train">Training data with the text and label columns (text, any label type <c>MapValueToKey</c> takes).</param>
    /// <param name="test">Test data with the same columns.</param>
    /// <param name="options">Model, columns and sizes.</param>
    /// <param name="log">Receives a line as each phase starts, or null.</param>
    /// <returns>The measurements.</returns>
    /// <exception cref="ArgumentException">An option is out of range, or a column is missing.</exception>
    public static PipelineBenchmarkResult Run(IDataView train, IDataView test, PipelineBenchmarkOptions options, IProgress<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        TorchRuntime.EnsureInitialized();

        var folder = ModelLocator.Resolve(options.ModelPath, options.Hub);
        var config = TransformerConfig.FromFolder(folder);
        var kind = config.Family == ModelFamily.Gpt2 ? ClassifierKind.Decoder : ClassifierKind.Encoder;

        // Read before anything is timed: row counts, and the texts the stream cycles through.
        var (testTexts, testLabels) = ReadColumns(test, options, "test");
        var (trainTexts, trainLabels) = ReadColumns(train, options, "training");
        var startupPeak = ProcessMemory.Read().PeakResidentMegabytes;

        var ml = new MLContext(seed: options.Seed);
        var keyColumn = options.LabelColumnName + "Key";
        TransformerClassifierOptions trainer = kind == ClassifierKind.Decoder ? new DecoderClassifierOptions() : new EncoderClassifierOptions();
        trainer.LabelColumnName = keyColumn;
        trainer.TextColumnName = options.TextColumnName;
        trainer.PredictedLabelColumnName = PredictedKeyColumn;
        trainer.ModelPath = folder;
        trainer.NumberOfEpochs = options.Epochs;
        trainer.BatchSize = options.BatchSize;
        trainer.LearningRate = options.LearningRate;
        trainer.MaximumLength = options.MaxLength;
        trainer.Strategy = options.Strategy;
        var pipeline = ml.Transforms.Conversion.MapValueToKey(keyColumn, options.LabelColumnName, keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(kind == ClassifierKind.Decoder
                ? ml.MulticlassClassification.Trainers.DecoderClassifier((DecoderClassifierOptions)trainer)
                : ml.MulticlassClassification.Trainers.EncoderClassifier((EncoderClassifierOptions)trainer))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", PredictedKeyColumn));

        using var recording = PipelineTimings.Record();
        log?.Report($"training: Fit on {trainTexts.Count} rows × {options.Epochs} epoch(s)");
        TransformerChain<KeyToValueMappingTransformer> model = null!;
        var training = Measure("training", (long)trainTexts.Count * options.Epochs, () => model = pipeline.Fit(train));
        var classifier = model.OfType<TextClassificationTransformer>().Single();
        try
        {
            // As a user switches a fitted model to bf16 scoring: training above ran in fp32 either way.
            classifier.InferencePrecision = options.Precision;
            var parameters = classifier.Classifier is HeadClassificationModel inner ? ModelBenchmark.CountParameters(inner.Inner.Model) : 0;

            log?.Report($"scoring: Transform + Evaluate on {testTexts.Count} rows");
            MulticlassClassificationMetrics metrics = null!;
            var scoring = Measure("scoring", testTexts.Count, () =>
                metrics = ml.MulticlassClassification.Evaluate(model.Transform(test), keyColumn, "Score", PredictedKeyColumn));

            log?.Report($"streaming: {options.StreamRows} rows through Transform");
            var texts = testTexts.Concat(trainTexts).ToArray();
            var labels = testLabels.Concat(trainLabels).ToArray();
            var stream = new CyclingTextDataView(options.TextColumnName, texts, options.LabelColumnName, labels, options.StreamRows);
            var samples = new List<MemorySample>();
            var streaming = Measure("streaming", options.StreamRows, () => samples = Stream(model.Transform(stream), options.SampleEvery));

            // The kernel's high-water mark lags the resident count by a few per-thread cached pages under load, so a
            // streaming sample can read above the peak taken at the phase's end: the peak covers every observation.
            var peak = new[] { startupPeak, training.PeakResidentMegabytes, scoring.PeakResidentMegabytes, streaming.PeakResidentMegabytes }
                .Concat(samples.Select(s => s.ResidentMegabytes)).Max();
            return new PipelineBenchmarkResult(folder, config, kind, parameters, trainTexts.Count, testTexts.Count, training, scoring, streaming,
                metrics.MicroAccuracy, metrics.LogLoss, samples, peak, classifier.InferencePrecision);
        }
        finally
        {
            classifier.Dispose();
        }
    }

    /// <summary>Reads every predicted label and score of a stream, sampling memory every <paramref name="sampleEvery"/> rows.</summary>
    private static List<MemorySample> Stream(IDataView scored, int sampleEvery)
    {
        var samples = new List<MemorySample>();
        var predicted = scored.Schema["PredictedLabel"];
        var score = scored.Schema["Score"];
        using var cursor = scored.GetRowCursor([predicted, score]);
        var getPredicted = cursor.GetGetter<ReadOnlyMemory<char>>(predicted);
        var getScore = cursor.GetGetter<VBuffer<float>>(score);
        ReadOnlyMemory<char> label = default;
        VBuffer<float> scores = default;
        var clock = Stopwatch.StartNew();
        long rows = 0;
        while (cursor.MoveNext())
        {
            getPredicted(ref label);
            getScore(ref scores);
            if (++rows % sampleEvery == 0)
            {
                samples.Add(MemorySample.Take(rows, clock.Elapsed.TotalSeconds));
            }
        }

        if (rows % sampleEvery != 0)
        {
            samples.Add(MemorySample.Take(rows, clock.Elapsed.TotalSeconds));
        }

        return samples;
    }

    private static PipelinePhase Measure(string name, long rows, Action run)
    {
        // Each phase starts from a collected heap and its own memory peak, so neither carries over from the last one.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ProcessMemory.TryResetPeak();
        var startMemory = ProcessMemory.Read();
        var before = PipelineTimings.Snapshot();
        var cpu = CpuContention.Start();
        var clock = Stopwatch.StartNew();
        run();
        var seconds = clock.Elapsed.TotalSeconds;
        var stages = PipelineTimings.Snapshot().Since(before);
        var contention = cpu.OtherProcessesPercent();
        var memory = ProcessMemory.Read();
        return new PipelinePhase(name, rows, seconds,
            stages[PipelineStage.ReadRows], stages[PipelineStage.Setup], stages[PipelineStage.Tokenize], stages[PipelineStage.Batch],
            stages[PipelineStage.Forward], stages[PipelineStage.Backward], stages[PipelineStage.OptimizerStep],
            stages.Batches, stages.Tokens, stages.PaddedTokens, startMemory.ResidentMegabytes, memory.PeakResidentMegabytes, memory.ResidentMegabytes, contention);
    }

    /// <summary>The text and label columns as strings (labels of any type, as text), checking that both exist.</summary>
    private static (List<string> Texts, List<string> Labels) ReadColumns(IDataView data, PipelineBenchmarkOptions options, string what)
    {
        var text = data.Schema.GetColumnOrNull(options.TextColumnName)
            ?? throw new ArgumentException($"The {what} data has no text column '{options.TextColumnName}'; its columns are: {string.Join(", ", data.Schema.Select(c => c.Name))}.");
        var label = data.Schema.GetColumnOrNull(options.LabelColumnName)
            ?? throw new ArgumentException($"The {what} data has no label column '{options.LabelColumnName}'; its columns are: {string.Join(", ", data.Schema.Select(c => c.Name))}.");
        if (text.Type is not TextDataViewType || label.Type is not TextDataViewType)
        {
            throw new ArgumentException($"The {what} data's columns '{text.Name}' ({text.Type}) and '{label.Name}' ({label.Type}) must both be text.");
        }

        var texts = new List<string>();
        var labels = new List<string>();
        using var cursor = data.GetRowCursor([text, label]);
        var getText = cursor.GetGetter<ReadOnlyMemory<char>>(text);
        var getLabel = cursor.GetGetter<ReadOnlyMemory<char>>(label);
        ReadOnlyMemory<char> value = default;
        while (cursor.MoveNext())
        {
            getText(ref value);
            texts.Add(value.ToString());
            getLabel(ref value);
            labels.Add(value.ToString());
        }

        if (texts.Count == 0)
        {
            throw new ArgumentException($"The {what} data has no rows.");
        }

        return (texts, labels);
    }
}

/// <summary>What <see cref="PipelineBenchmark.Run"/> runs.</summary>
public sealed record PipelineBenchmarkOptions
{
    /// <summary>A model folder or hub id (see <see cref="PipelineBenchmark.CreatePresetFolder"/> for a preset's folder).</summary>
    public required string ModelPath { get; init; }

    /// <summary>Where hub ids are downloaded; null reads huggingface_hub's environment variables.</summary>
    public HubOptions? Hub { get; init; }

    /// <summary>The text column.</summary>
    public string TextColumnName { get; init; } = TextClassificationOptions.Defaults.TextColumnName;

    /// <summary>The label column: text, mapped to a key by <c>MapValueToKey</c>.</summary>
    public string LabelColumnName { get; init; } = TextClassificationOptions.Defaults.LabelColumnName;

    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Rows per training step and per scoring call.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Longest input in tokens; longer texts are truncated.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Peak learning rate of AdamW.</summary>
    public double LearningRate { get; init; } = TransformerClassifierOptions.FineTuningDefaults.LearningRate;

    /// <summary>Rows scored by the streaming phase, cycling through the test then the training texts.</summary>
    public long StreamRows { get; init; } = 100_000;

    /// <summary>Rows between two memory samples of the streaming phase.</summary>
    public int SampleEvery { get; init; } = 1_000;

    /// <summary>Seed of the <c>MLContext</c>, hence of weight initialisation, shuffling and dropout.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>A classification head, or a prompt with label words scored by the language-model head (decoders: the
    /// sentiment template <c>Review: {text} Sentiment:</c> and words from the class names).</summary>
    public ClassificationStrategy Strategy { get; init; } = ClassificationStrategy.Head;

    /// <summary>The number format scoring and streaming run in (set on the fitted transformer); training is fp32.</summary>
    public InferencePrecision Precision { get; init; } = InferencePrecision.Float32;

    /// <summary>Checks every value and says which is wrong.</summary>
    /// <exception cref="ArgumentException">A value is missing or out of range.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(ModelPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(TextColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(LabelColumnName);
        Check(Epochs >= 1, $"Epochs must be at least 1 (got {Epochs}).");
        Check(BatchSize >= 1, $"BatchSize must be at least 1 (got {BatchSize}).");
        Check(MaxLength >= 2, $"MaxLength must be at least 2 (got {MaxLength}).");
        Check(LearningRate > 0, $"LearningRate must be positive (got {LearningRate}).");
        Check(StreamRows >= 1, $"StreamRows must be at least 1 (got {StreamRows}).");
        Check(SampleEvery >= 1, $"SampleEvery must be at least 1 (got {SampleEvery}).");
    }

    private static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(null, message);
        }
    }
}

/// <summary>The measurements of <see cref="PipelineBenchmark.Run"/>.</summary>
/// <param name="ModelFolder">The model folder that was trained.</param>
/// <param name="Config">Its config.</param>
/// <param name="Kind">Encoder or decoder classifier.</param>
/// <param name="Parameters">Trainable values of the trained network.</param>
/// <param name="TrainRows">Training rows (one epoch).</param>
/// <param name="TestRows">Test rows.</param>
/// <param name="Training">The <c>Fit</c> of the whole pipeline.</param>
/// <param name="Scoring"><c>Transform</c> + <c>Evaluate</c> on the test data.</param>
/// <param name="Streaming">The stream, read to the end through <c>Transform</c>.</param>
/// <param name="Accuracy">Accuracy on the test data.</param>
/// <param name="LogLoss">Log-loss on the test data.</param>
/// <param name="StreamingMemory">Memory samples along the stream.</param>
/// <param name="PeakResidentMegabytes">The process's largest resident size over the run, in MiB.</param>
/// <param name="Precision">The number format the fitted model scored in.</param>
public sealed record PipelineBenchmarkResult(
    string ModelFolder, TransformerConfig Config, ClassifierKind Kind, long Parameters, int TrainRows, int TestRows,
    PipelinePhase Training, PipelinePhase Scoring, PipelinePhase Streaming, double Accuracy, double LogLoss,
    IReadOnlyList<MemorySample> StreamingMemory, double PeakResidentMegabytes, InferencePrecision Precision)
{
    /// <summary>
    /// How fast resident memory grows along the second half of the stream, in MiB per 10,000 rows: the least-squares
    /// slope of the samples from the middle on (the first half lets allocators settle on the batch shapes). Near 0 when
    /// streaming holds memory flat.
    /// </summary>
    public double StreamingSlopeMegabytesPer10kRows
    {
        get
        {
            var half = StreamingMemory.Skip(StreamingMemory.Count / 2).ToList();
            if (half.Count < 2)
            {
                return 0;
            }

            var meanRows = half.Average(s => (double)s.Rows);
            var meanRss = half.Average(s => s.ResidentMegabytes);
            var covariance = half.Sum(s => (s.Rows - meanRows) * (s.ResidentMegabytes - meanRss));
            var variance = half.Sum(s => (s.Rows - meanRows) * (s.Rows - meanRows));
            return variance == 0 ? 0 : covariance / variance * 10_000;
        }
    }
}

/// <summary>
/// One phase of the pipeline benchmark: wall time, and the seconds the library's timers gave each stage. The stages
/// are disjoint; <see cref="OtherSeconds"/> is what none of them covers (ML.NET's transforms and evaluator, output
/// columns, progress, garbage collection).
/// </summary>
/// <param name="Name">training, scoring or streaming.</param>
/// <param name="Rows">Rows processed (training: rows × epochs).</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="ReadRowsSeconds">Reading rows out of the input data view.</param>
/// <param name="SetupSeconds">Resolving the model and building the network.</param>
/// <param name="TokenizeSeconds">Tokenizing.</param>
/// <param name="BatchSeconds">Grouping rows into batches, padding, copying into tensors.</param>
/// <param name="ForwardSeconds">The forward pass (with the loss when training; with softmax and reading the probabilities when scoring).</param>
/// <param name="BackwardSeconds">The backward pass, with freeing the step's tensors.</param>
/// <param name="OptimizerStepSeconds">Gradient clipping, AdamW's step and zeroing the gradients.</param>
/// <param name="Batches">Batches the network ran.</param>
/// <param name="Tokens">Real tokens in those batches.</param>
/// <param name="PaddedTokens">Positions in those batches, padding included.</param>
/// <param name="StartResidentMegabytes">The resident size as the phase started, MiB.</param>
/// <param name="PeakResidentMegabytes">The largest resident size during the phase (or since the process started, where it cannot be reset), MiB.</param>
/// <param name="ResidentMegabytes">The resident size at the end of the phase, MiB.</param>
/// <param name="OtherCpuPercent">The share of the machine's CPU time other processes took during the phase, or null off Linux.</param>
public sealed record PipelinePhase(
    string Name, long Rows, double Seconds, double ReadRowsSeconds, double SetupSeconds, double TokenizeSeconds, double BatchSeconds,
    double ForwardSeconds, double BackwardSeconds, double OptimizerStepSeconds, long Batches, long Tokens, long PaddedTokens,
    double StartResidentMegabytes, double PeakResidentMegabytes, double ResidentMegabytes, double? OtherCpuPercent)
{
    /// <summary>Throughput.</summary>
    public double RowsPerSecond => Seconds > 0 ? Rows / Seconds : 0;

    /// <summary>Time inside the network: forward, backward and optimizer step.</summary>
    public double ModelSeconds => ForwardSeconds + BackwardSeconds + OptimizerStepSeconds;

    /// <summary>Time outside the network.</summary>
    public double OutsideSeconds => Math.Max(0, Seconds - ModelSeconds);

    /// <summary>The share of the wall time spent outside the network, in [0, 1].</summary>
    public double OutsideShare => Seconds > 0 ? Math.Clamp(OutsideSeconds / Seconds, 0, 1) : 0;

    /// <summary>Wall time no stage timer covers.</summary>
    public double OtherSeconds => Math.Max(0, Seconds - ModelSeconds - ReadRowsSeconds - SetupSeconds - TokenizeSeconds - BatchSeconds);

    /// <summary>The share of batch positions that are padding, in [0, 1].</summary>
    public double PaddingShare => PaddedTokens > 0 ? 1 - ((double)Tokens / PaddedTokens) : 0;
}

/// <summary>Memory at one point of the stream.</summary>
/// <param name="Rows">Rows read so far.</param>
/// <param name="Seconds">Seconds since the stream started.</param>
/// <param name="ResidentMegabytes">The process's resident size (Linux <c>VmRSS</c>), MiB.</param>
/// <param name="ManagedMegabytes">The managed heap's live size as the GC last counted it (no collection forced), MiB.</param>
public readonly record struct MemorySample(long Rows, double Seconds, double ResidentMegabytes, double ManagedMegabytes)
{
    internal static MemorySample Take(long rows, double seconds) =>
        new(rows, seconds, ProcessMemory.Read().ResidentMegabytes, GC.GetTotalMemory(forceFullCollection: false) / 1048576.0);
}
