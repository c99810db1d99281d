using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// A transformer sequence classifier with its tokenizer: batched, no-grad inference over raw texts, and a HuggingFace
/// folder on disk (config.json with the labels, model.safetensors, tokenizer files) that HuggingFace loads too.
/// </summary>
public sealed class HeadClassifier : IDisposable, ITrainableClassifier<EncodedText>, IExplainableClassifier
{
    /// <summary>Our own settings beside HuggingFace's files.</summary>
    internal const string SettingsFile = "mlnet_transformers.json";

    private readonly InferenceModel<SequenceClassificationModel> _inference;

    internal HeadClassifier(SequenceClassificationModel model, TransformerTokenizer tokenizer, ClassifierKind kind, int maxLength)
    {
        Model = model;
        Tokenizer = tokenizer;
        Kind = kind;
        MaxLength = maxLength;
        _inference = new InferenceModel<SequenceClassificationModel>(model, TransformerModels.CreateForSequenceClassification);
    }

    /// <summary>The network.</summary>
    public SequenceClassificationModel Model { get; }

    /// <summary>The tokenizer.</summary>
    public TransformerTokenizer Tokenizer { get; }

    /// <summary>Encoder or decoder.</summary>
    public ClassifierKind Kind { get; }

    /// <summary>Longest input in tokens, special tokens included; longer inputs are truncated.</summary>
    public int MaxLength { get; }

    /// <summary>Class names in class-index order.</summary>
    public IReadOnlyList<string> Labels => Model.Config.Labels;

    /// <summary>
    /// The number format <see cref="PredictProbabilities"/> runs in (float32 by default). With bfloat16, a bfloat16 copy
    /// of <see cref="Model"/> is made on first use and kept; <see cref="FineTuner"/> drops it when it changes the weights.
    /// If you change <see cref="Model"/>'s weights yourself, set float32 and back to copy them again. Training, and
    /// what <see cref="Save"/> writes, are float32 whatever this says.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined precision.</exception>
    public InferencePrecision InferencePrecision
    {
        get => _inference.Precision;
        set => _inference.Precision = value;
    }

    /// <summary>
    /// Builds a classifier from a HuggingFace folder for the given classes. Weights load from the folder when it has
    /// any (a head of another size, or none, is freshly initialised and reported); a folder with only config.json and
    /// tokenizer files starts from random weights, like HuggingFace's <c>from_config</c>.
    /// </summary>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <param name="labels">Class names, in class-index order.</param>
    /// <param name="kind">Encoder or decoder; must match the folder's family.</param>
    /// <param name="maxLength">Longest input, capped by the model's maximum; null for the model's maximum.</param>
    /// <param name="seed">Seeds the fresh weights.</param>
    /// <param name="report">What loading found, or null when the folder has no weights.</param>
    /// <returns>The classifier, in training mode.</returns>
    public static HeadClassifier FromPretrained(string folder, IReadOnlyList<string> labels, ClassifierKind kind, int? maxLength, int seed, out LoadReport? report)
    {
        TorchRuntime.EnsureInitialized();
        var config = TransformerConfig.FromFolder(folder);
        CheckKind(config, kind, folder);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        manual_seed(seed);
        var model = TransformerModels.CreateForSequenceClassification(config.WithLabels(labels));
        report = TransformerModels.LoadFromFolder(model, folder);

        return new HeadClassifier(model, tokenizer, kind, ResolveMaxLength(maxLength, tokenizer));
    }

    /// <summary>Loads a classifier saved by <see cref="Save"/> (or any fine-tuned HuggingFace <c>*ForSequenceClassification</c> folder).</summary>
    /// <param name="folder">The folder.</param>
    /// <returns>The classifier, in evaluation mode.</returns>
    /// <exception cref="InvalidDataException">The folder has no weights, or they do not fit its config.</exception>
    public static HeadClassifier Load(string folder)
    {
        TorchRuntime.EnsureInitialized();
        var config = TransformerConfig.FromFolder(folder);
        var settings = ReadSettings(folder);
        if (settings?["strategy"]?.GetValue<string>() == PromptClassifier.Strategy)
        {
            throw new InvalidDataException($"'{folder}' holds a prompt classifier (label words scored by a language-model head), not a classification head; load it with {nameof(PromptClassifier)}.{nameof(PromptClassifier.Load)}.");
        }

        var kind = settings?["kind"]?.GetValue<string>() is string k ? Enum.Parse<ClassifierKind>(k, ignoreCase: true) : KindOf(config.Family);
        CheckKind(config, kind, folder);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        var model = TransformerModels.CreateForSequenceClassification(config);
        var report = TransformerModels.LoadFromFolder(model, folder)
            ?? throw new InvalidDataException($"The classifier folder '{folder}' has no weights (model.safetensors or pytorch_model.bin).");
        if (!report.IsComplete)
        {
            throw new InvalidDataException($"The classifier in '{folder}' is incomplete: {report}");
        }

        model.eval();
        var maxLength = settings?["max_length"]?.GetValue<int>();
        return new HeadClassifier(model, tokenizer, kind, ResolveMaxLength(maxLength, tokenizer));
    }

    /// <summary>Writes the classifier as a HuggingFace folder plus our settings file.</summary>
    /// <param name="folder">The folder (created if needed).</param>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Model.Config.ToJson());
        SafeTensorsFile.Write(Path.Combine(folder, "model.safetensors"), Model.state_dict(), new Dictionary<string, string> { ["format"] = "pt" });
        Tokenizer.SaveTo(folder);
        var settings = new JsonObject { ["kind"] = Kind.ToString().ToLowerInvariant(), ["max_length"] = MaxLength };
        File.WriteAllText(Path.Combine(folder, SettingsFile), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Class probabilities for texts, in input order, computed in <see cref="InferencePrecision"/> under no-grad in padded
    /// forward passes of rows of similar length (cut where a pass saves more padding than it costs).
    /// </summary>
    /// <param name="texts">First texts.</param>
    /// <param name="secondTexts">Second texts (sentence pairs), or null.</param>
    /// <param name="batchSize">The most rows per forward pass.</param>
    /// <returns>One probability vector per row, in label order.</returns>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize = 64) =>
        ProbabilitiesIn(texts, secondTexts, batchSize, InferencePrecision);

    private float[][] ProbabilitiesIn(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize, InferencePrecision precision)
    {
        using var span = TransformerTelemetry.ActivitySource.StartActivity("Score");
        span?.SetTag("rows", texts.Count);
        var model = _inference.ForScoring(precision);
        var result = new float[texts.Count][];
        using var _ = no_grad();
        var tokenizing = TransformerTelemetry.Start(TransformerTelemetry.Tokenization);
        var encoded = new EncodedText[texts.Count];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = Encode(texts[i], secondTexts?[i]);
        }

        TransformerTelemetry.Stop(TransformerTelemetry.Tokenization, tokenizing);

        var classes = Labels.Count;
        foreach (var pass in PassesByLength([.. encoded.Select(e => e.InputIds.Length)], batchSize, Model.Config))
        {
            using var scope = NewDisposeScope();
            var logits = Logits(model, [.. pass.Select(i => encoded[i])]);
            var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
            var probabilities = logits.to(ScalarType.Float32).softmax(-1).contiguous().data<float>().ToArray();
            TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
            for (var r = 0; r < pass.Length; r++)
            {
                result[pass[r]] = probabilities.AsSpan(r * classes, classes).ToArray();
            }
        }

        return result;
    }

    /// <summary>
    /// The forward passes that score rows of these lengths: row indices sorted by length and cut by <see cref="Chunks"/>
    /// at <paramref name="config"/>'s per-pass cost, so rows of similar length share a pass and little of it is padding
    /// (in SST-2-like text, padding is half of a batch of 32 rows in input order). Timed as batching.
    /// </summary>
    /// <returns>Each pass's row indices, shortest rows first.</returns>
    internal static List<int[]> PassesByLength(IReadOnlyList<int> lengths, int batchSize, TransformerConfig config)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var order = Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).ToArray();
        var passes = new List<int[]>();
        var start = 0;
        foreach (var count in Chunks([.. order.Select(i => lengths[i])], batchSize, PassCostInPositions(config)))
        {
            passes.Add(order[start..(start + count)]);
            start += count;
        }

        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        return passes;
    }

    /// <summary>
    /// Cuts rows sorted by length into forward passes of at most <paramref name="batchSize"/> rows, choosing the cuts
    /// that minimise the positions computed (rows × the longest row, padding included) plus a fixed cost per pass of
    /// <paramref name="passCost"/> positions (dynamic programming over the cut points).
    /// </summary>
    /// <returns>The number of rows in each pass, in order.</returns>
    internal static List<int> Chunks(IReadOnlyList<int> sortedLengths, int batchSize, double passCost)
    {
        var n = sortedLengths.Count;
        var cost = new double[n + 1];
        var cut = new int[n + 1];
        for (var end = 1; end <= n; end++)
        {
            cost[end] = double.MaxValue;
            for (var begin = Math.Max(0, end - batchSize); begin < end; begin++)
            {
                var candidate = cost[begin] + passCost + ((double)(end - begin) * sortedLengths[end - 1]);
                if (candidate < cost[end])
                {
                    cost[end] = candidate;
                    cut[end] = begin;
                }
            }
        }

        var chunks = new List<int>();
        for (var end = n; end > 0; end = cut[end])
        {
            chunks.Add(end - cut[end]);
        }

        chunks.Reverse();
        return chunks;
    }

    /// <summary>
    /// What one more forward pass costs, in padded positions: its fixed cost (each layer's dozen or so operations, a few
    /// microseconds each, and less parallel work for libtorch's threads in a smaller pass) over the matmul work of one
    /// position in one layer (4·H² + 2·H·I FLOPs). The fixed cost, 30 MFLOP per layer, was tuned on SST-2 sentences with
    /// the nasbert-size preset (hidden 192, intermediate 384: 102 positions), balancing 1 and 2 threads (2 threads
    /// want fewer, larger passes). It comes to about 1400 positions for a tiny model (rarely worth a cut) and 17 for
    /// MiniLM (hidden 384), whose positions cost more.
    /// </summary>
    private static double PassCostInPositions(TransformerConfig config)
    {
        const double passFlopsPerLayer = 3e7;
        double h = config.HiddenSize, i = config.IntermediateSize;
        return passFlopsPerLayer / ((4 * h * h) + (2 * h * i));
    }

    /// <summary>Tokenizes one row; an input with no tokens (a decoder's empty text) becomes the end-of-text token alone.</summary>
    internal EncodedText Encode(string text, string? secondText) => Batches.EncodeNonEmpty(Tokenizer, text, secondText, MaxLength);

    /// <summary>Logits (B, K), in the model's dtype, of already-tokenized rows, padded on the right.</summary>
    private Tensor Logits(SequenceClassificationModel model, IReadOnlyList<EncodedText> rows)
    {
        var (ids, mask, types) = Batches.Prepare(rows, Tokenizer.PadTokenId, model.Config);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var logits = model.forward(ids, mask, types);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return logits;
    }

    /// <summary>Frees the network's native memory, and its bfloat16 copy if there is one.</summary>
    public void Dispose()
    {
        _inference.Dispose();
        Model.Dispose();
    }

    /// <summary>Whether a bfloat16 copy of the weights is alive (for tests).</summary>
    internal bool HasInferenceCopy => _inference.HasCopy;

    TorchSharp.torch.nn.Module ITrainableClassifier<EncodedText>.Module => Model;

    int ITrainableClassifier<EncodedText>.ClassCount => Labels.Count;

    EncodedText ITrainableClassifier<EncodedText>.EncodeForTraining(string text, string? secondText) => Encode(text, secondText);

    int ITrainableClassifier<EncodedText>.TokenCount(EncodedText row) => row.InputIds.Length;

    Tensor ITrainableClassifier<EncodedText>.Loss(IReadOnlyList<EncodedText> rows, long[] labels)
    {
        var logits = Logits(Model, rows);
        var loss = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var result = TorchSharp.torch.nn.functional.cross_entropy(logits.to(ScalarType.Float32), tensor(labels)); // float32 for the softmax and the loss, also when the model runs in bfloat16 (mixed-precision training)
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, loss);
        return result;
    }

    // Validation selects the epoch to keep, so it scores the float32 weights being trained.
    float[][] ITrainableClassifier<EncodedText>.PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize) =>
        ProbabilitiesIn(texts, secondTexts, batchSize, InferencePrecision.Float32);

    void ITrainableClassifier<EncodedText>.BeforeValidation()
    {
    }

    void ITrainableClassifier<EncodedText>.WeightsChanged() => _inference.Discard();

    TransformerModel IExplainableClassifier.Network => Model;

    int[] IExplainableClassifier.ExplainedTokens(string text, string? secondText) => Encode(text, secondText).InputIds;

    Tensor IExplainableClassifier.ClassScores(string text, string? secondText, int copies)
    {
        var row = Encode(text, secondText);
        return Logits(Model, [.. Enumerable.Repeat(row, copies)]);
    }

    private static JsonObject? ReadSettings(string folder)
    {
        var path = Path.Combine(folder, SettingsFile);
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject : null;
    }

    internal static int ResolveMaxLength(int? requested, TransformerTokenizer tokenizer)
    {
        // A longer request than the position table allows is capped: inputs are truncated to what the model can read.
        var limit = tokenizer.ModelMaxLength;
        return Math.Min(requested ?? limit, limit);
    }

    /// <summary>The kind of classifier a model family makes: GPT-2 a decoder, BART and T5 an encoder-decoder, the rest an encoder.</summary>
    internal static ClassifierKind KindOf(ModelFamily family) => family switch
    {
        ModelFamily.Gpt2 => ClassifierKind.Decoder,
        ModelFamily.Bart or ModelFamily.T5 => ClassifierKind.EncoderDecoder,
        _ => ClassifierKind.Encoder,
    };

    internal static void CheckKind(TransformerConfig config, ClassifierKind kind, string folder, bool prompt = false)
    {
        var actual = KindOf(config.Family);
        string Name(ClassifierKind k) => k switch
        {
            ClassifierKind.Decoder => "decoder",
            ClassifierKind.EncoderDecoder => "encoder-decoder",
            _ => "encoder",
        };

        if (actual != kind)
        {
            var catalog = actual switch
            {
                ClassifierKind.Decoder => "DecoderClassifier",
                ClassifierKind.EncoderDecoder => "EncoderDecoderClassifier",
                _ => "EncoderClassifier",
            };
            var advice = $"ClassifierKind.{actual} ({catalog}{(prompt ? " with the prompt strategy" : string.Empty)} in ML.NET)";
            throw new InvalidDataException(
                $"The model in '{folder}' is a {config.Family} {Name(actual)}, but {(kind == ClassifierKind.Encoder ? "an" : "a")} {Name(kind)} {(prompt ? "prompt " : string.Empty)}classifier was asked for. " +
                $"Use {advice} for this model.");
        }

        if (!prompt && config.Family == ModelFamily.T5)
        {
            throw new InvalidDataException(
                $"The model in '{folder}' is a T5, which has no classification head: it classifies text-to-text, its decoder scoring each class's target text. Use the prompt strategy (ClassificationStrategy.Prompt in ML.NET, --kind seq2seq-prompt on the command line).");
        }
    }
}

/// <summary>Padded batches as tensors.</summary>
internal static class Batches
{
    /// <summary>Tokenizes one row; an input with no tokens (a decoder's empty text) becomes the end-of-text token alone.</summary>
    public static EncodedText EncodeNonEmpty(TransformerTokenizer tokenizer, string? text, string? secondText, int maxLength)
    {
        var encoded = tokenizer.Encode(text ?? string.Empty, secondText, maxLength);
        if (encoded.InputIds.Length == 0)
        {
            var id = tokenizer.EosTokenId ?? tokenizer.PadTokenId;
            return encoded with { InputIds = [id], TokenTypeIds = [0] };
        }

        return encoded;
    }

    /// <summary>
    /// Pads rows on the right into token ids, attention mask and token types (B, T), timed as batching and counted;
    /// the token types are null for families that take none (only BERT reads them).
    /// </summary>
    public static (Tensor Ids, Tensor Mask, Tensor? Types) Prepare(IReadOnlyList<EncodedText> rows, int padId, TransformerConfig config)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var batch = EncodedBatch.Pad(rows, padId);
        var (ids, mask, types) = ToTensors(batch);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(batch.Lengths.Sum(), (long)batch.BatchSize * batch.SequenceLength);
        return (ids, mask, config.Family is ModelFamily.Bert ? types : null);
    }

    /// <summary>Token ids, attention mask and token types of a padded batch: (B, T) int64 each.</summary>
    public static (Tensor Ids, Tensor Mask, Tensor Types) ToTensors(EncodedBatch batch)
    {
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        return (tensor(batch.InputIds, shape), tensor(batch.AttentionMask, shape), tensor(batch.TokenTypeIds, shape));
    }
}
