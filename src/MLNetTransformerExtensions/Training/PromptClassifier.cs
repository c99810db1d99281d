using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Classification as word prediction: each class has a label word, the input is put into a prompt, and the model's
/// language-model head scores the words. A decoder (GPT-2) continues <c>Review: {text} Sentiment:</c> with
/// <c>" positive"</c> or <c>" negative"</c>; an encoder (BERT, RoBERTa, DistilBERT) fills the mask of
/// <c>{text} It was [MASK].</c> with <c>great</c> or <c>terrible</c>, in the style of PET. The class probabilities are
/// the softmax of the label words' scores (optionally calibrated), exactly as a head classifier outputs them.
/// </summary>
/// <remarks>
/// <para>Works zero-shot from a pretrained language model (no training), in context (few-shot demonstrations before the
/// prompt), or fine-tuned with <see cref="FineTuner.Train(PromptClassifier, LabeledTexts, LabeledTexts?, FineTuningOptions, IProgress{TrainingProgress}?, CancellationToken)"/>:
/// a decoder learns by the causal-LM loss of the true label word's tokens given the prompt, an encoder by
/// cross-entropy over the label words at the mask.</para>
/// <para>A label word of several tokens (decoders) scores the sum of its tokens' log-probabilities given the prompt and
/// its earlier tokens, or their mean with <see cref="PromptOptions.LengthNormalized"/>. When every word is one token,
/// an input costs one forward pass; otherwise one pass per distinct continuation (words that share a beginning share it).</para>
/// <para>On disk it is a HuggingFace language-model folder (config.json, model.safetensors with the LM head, tokenizer
/// files) plus <c>mlnet_transformers.json</c> holding the template, label words, demonstrations and calibration.</para>
/// </remarks>
/// <example>
/// <code>
/// using var classifier = PromptClassifier.FromPretrained("models/gpt2", ["negative", "positive"], ClassifierKind.Decoder,
///     new PromptOptions { Template = "Review: {text} Sentiment:", LabelWords = [" negative", " positive"] },
///     maxLength: 128, seed: 1, out _);
/// float[][] probabilities = classifier.PredictProbabilities(["I loved the cinematography."], null);
/// </code>
/// </example>
public sealed class PromptClassifier : IDisposable, ITrainableClassifier<PromptRow>
{
    /// <summary>The <c>strategy</c> our settings file records for prompt classifiers.</summary>
    internal const string Strategy = "prompt";

    private readonly PieceTokenizer _pieces;
    private readonly int[][] _labelTokens;
    private readonly int[][] _continuations;
    private readonly int[] _continuationOfWord;
    private readonly int _budget;
    private readonly InferenceModel<LanguageModel> _inference;
    private PromptEncoder _encoder;
    private IReadOnlyList<Demonstration> _demonstrations = [];
    private double[]? _calibration;

    private PromptClassifier(LanguageModel model, TransformerTokenizer tokenizer, ClassifierKind kind, int maxLength, PromptOptions options)
    {
        options.Validate();
        Model = model;
        Tokenizer = tokenizer;
        Kind = kind;
        MaxLength = maxLength;
        Template = PromptTemplate.Parse(options.Template ?? PromptTemplate.DefaultFor(kind, pairs: false));
        _pieces = new PieceTokenizer(tokenizer);
        string[] words;
        (words, _labelTokens) = Verbalizer.Tokenize(_pieces, Labels, options.LabelWords ?? Verbalizer.Defaults(Labels, kind), kind);
        LabelWords = words;
        Options = options with { Template = Template.Text, LabelWords = words };
        (_continuations, _continuationOfWord) = Continuations(_labelTokens);

        // A decoder reads the label word after the prompt, so the prompt leaves room for all but its last token.
        var longestContinuation = _continuations.Max(c => c.Length);
        _budget = kind == ClassifierKind.Decoder ? Math.Min(maxLength, SaturatingSubtract(tokenizer.ModelMaxLength, longestContinuation)) : maxLength;
        _encoder = CreateEncoder([]);
        _inference = new InferenceModel<LanguageModel>(model, TransformerModels.CreateForLanguageModeling);
    }

    /// <summary>The language model (masked-LM for encoders, causal-LM for decoders).</summary>
    public LanguageModel Model { get; }

    /// <summary>The tokenizer.</summary>
    public TransformerTokenizer Tokenizer { get; }

    /// <summary>Encoder (the label word fills a mask) or decoder (the label word continues the prompt).</summary>
    public ClassifierKind Kind { get; }

    /// <summary>Longest prompt in tokens, special tokens and demonstrations included; texts are truncated to fit.</summary>
    public int MaxLength { get; }

    /// <summary>Class names in class-index order.</summary>
    public IReadOnlyList<string> Labels => Model.Config.Labels;

    /// <summary>The options, with the template and label words resolved (defaults filled in, label words as tokenized).</summary>
    public PromptOptions Options { get; }

    /// <summary>
    /// The number format <see cref="PredictProbabilities"/> and <see cref="ScoreLabelWords"/> run in (float32 by default).
    /// With bfloat16, a bfloat16 copy of <see cref="Model"/> is made on first use and kept; <see cref="FineTuner"/> drops
    /// it when it changes the weights. If you change <see cref="Model"/>'s weights yourself, set float32 and back to copy
    /// them again. Training, the calibration and what <see cref="Save"/> writes are float32 whatever this says.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined precision.</exception>
    public InferencePrecision InferencePrecision
    {
        get => _inference.Precision;
        set => _inference.Precision = value;
    }

    /// <summary>The prompt template.</summary>
    public PromptTemplate Template { get; }

    /// <summary>Each class's label word as the model sees it (byte-level BPE words with their leading space).</summary>
    public IReadOnlyList<string> LabelWords { get; }

    /// <summary>Each class's label word tokens.</summary>
    public IReadOnlyList<IReadOnlyList<int>> LabelWordTokenIds => _labelTokens;

    /// <summary>The demonstrations put before each prompt, in order (empty for zero-shot).</summary>
    public IReadOnlyList<Demonstration> Demonstrations => _demonstrations;

    /// <summary>
    /// With <see cref="PromptOptions.Calibrate"/>, the class probabilities of the content-free input, by which
    /// predictions are divided before normalising; otherwise null.
    /// </summary>
    public IReadOnlyList<double>? Calibration => _calibration;

    /// <summary>
    /// Builds a prompt classifier from a HuggingFace folder. The language-model head comes from the checkpoint: GPT-2's
    /// is tied to its token embeddings; an encoder's masked-LM head (<c>cls.predictions.*</c>, <c>lm_head.*</c>,
    /// <c>vocab_transform</c>/<c>vocab_projector</c>) must be in the checkpoint. A folder with only config.json and
    /// tokenizer files starts from random weights, to train from scratch.
    /// </summary>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <param name="labels">Class names, in class-index order.</param>
    /// <param name="kind">Decoder or encoder; must match the folder's family.</param>
    /// <param name="options">Template, label words, shots, calibration; null for the defaults.</param>
    /// <param name="maxLength">Longest prompt; null for the model's maximum.</param>
    /// <param name="seed">Seeds any fresh weights.</param>
    /// <param name="report">What loading found, or null when the folder has no weights.</param>
    /// <returns>The classifier, ready to predict zero-shot (calibrated when asked).</returns>
    /// <exception cref="InvalidDataException">The model is of the other kind, or an encoder checkpoint lacks its masked-LM head.</exception>
    /// <exception cref="ArgumentException">The template or the label words are unusable; the message says why.</exception>
    public static PromptClassifier FromPretrained(string folder, IReadOnlyList<string> labels, ClassifierKind kind, PromptOptions? options,
        int? maxLength, int seed, out LoadReport? report)
    {
        ArgumentNullException.ThrowIfNull(labels);
        TorchRuntime.EnsureInitialized();
        options ??= new PromptOptions();
        options.Validate();
        var config = TransformerConfig.FromFolder(folder);
        TextClassifier.CheckKind(config, kind, folder, prompt: true);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        manual_seed(seed);
        var model = TransformerModels.CreateForLanguageModeling(config.WithLabels(labels));
        try
        {
            report = TransformerModels.LoadFromFolder(model, folder);
            if (report is not null)
            {
                CheckHead(model, report);
            }

            var classifier = new PromptClassifier(model, tokenizer, kind, TextClassifier.ResolveMaxLength(maxLength, tokenizer), options);
            classifier.Recalibrate();
            return classifier;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads a classifier saved by <see cref="Save"/>.</summary>
    /// <param name="folder">The folder.</param>
    /// <returns>The classifier, in evaluation mode, predicting exactly as when it was saved.</returns>
    /// <exception cref="InvalidDataException">The folder is not a saved prompt classifier, or its weights are incomplete.</exception>
    public static PromptClassifier Load(string folder)
    {
        TorchRuntime.EnsureInitialized();
        var config = TransformerConfig.FromFolder(folder);
        var settingsPath = Path.Combine(folder, TextClassifier.SettingsFile);
        var settings = File.Exists(settingsPath) ? JsonNode.Parse(File.ReadAllText(settingsPath)) as JsonObject : null;
        if (settings?["strategy"]?.GetValue<string>() != Strategy || settings["prompt"] is not JsonObject prompt)
        {
            throw new InvalidDataException(
                $"'{folder}' has no prompt settings ({TextClassifier.SettingsFile} with \"strategy\": \"{Strategy}\"). A classifier with a classification head loads with {nameof(TextClassifier)}.{nameof(TextClassifier.Load)}; a pretrained model becomes a prompt classifier with {nameof(FromPretrained)}.");
        }

        var kind = Enum.Parse<ClassifierKind>(settings["kind"]!.GetValue<string>(), ignoreCase: true);
        TextClassifier.CheckKind(config, kind, folder, prompt: true);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        var model = TransformerModels.CreateForLanguageModeling(config);
        try
        {
            var report = TransformerModels.LoadFromFolder(model, folder)
                ?? throw new InvalidDataException($"The classifier folder '{folder}' has no weights (model.safetensors or pytorch_model.bin).");
            if (!report.IsComplete)
            {
                throw new InvalidDataException($"The classifier in '{folder}' is incomplete: {report}");
            }

            model.eval();
            var options = new PromptOptions
            {
                Template = prompt["template"]!.GetValue<string>(),
                LabelWords = [.. prompt["label_words"]!.AsArray().Select(w => w!.GetValue<string>())],
                LengthNormalized = prompt["length_normalized"]?.GetValue<bool>() ?? false,
                Shots = prompt["shots"]?.GetValue<int>() ?? 0,
                Calibrate = prompt["calibrate"]?.GetValue<bool>() ?? false,
                ContentFreeText = prompt["content_free_text"]?.GetValue<string>() ?? "N/A",
                DemonstrationSeparator = prompt["demonstration_separator"]?.GetValue<string>() ?? "\n",
            };
            var classifier = new PromptClassifier(model, tokenizer, kind, TextClassifier.ResolveMaxLength(settings["max_length"]?.GetValue<int>(), tokenizer), options);
            var demonstrations = prompt["demonstrations"]?.AsArray().Select(d => new Demonstration(
                d!["text"]!.GetValue<string>(), d["text2"]?.GetValue<string>(), d["label"]!.GetValue<int>())).ToList() ?? [];
            classifier.UseDemonstrations(demonstrations);
            classifier._calibration = prompt["calibration"] is JsonArray calibration ? [.. calibration.Select(v => v!.GetValue<double>())] : null;
            if (options.Calibrate && classifier._calibration?.Length != classifier.Labels.Count)
            {
                classifier.Recalibrate();
            }

            return classifier;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Writes the classifier as a HuggingFace language-model folder plus our settings file.</summary>
    /// <param name="folder">The folder (created if needed).</param>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var config = (JsonObject)Model.Config.Json.DeepClone();
        config["architectures"] = new JsonArray(HuggingFaceClassName(Model.Config.Family));
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        SafeTensorsFile.Write(Path.Combine(folder, "model.safetensors"), Model.state_dict(), new Dictionary<string, string> { ["format"] = "pt" });
        Tokenizer.SaveTo(folder);
        var prompt = new JsonObject
        {
            ["template"] = Template.Text,
            ["label_words"] = new JsonArray([.. LabelWords.Select(w => JsonValue.Create(w))]),
            ["length_normalized"] = Options.LengthNormalized,
            ["shots"] = Options.Shots,
            ["calibrate"] = Options.Calibrate,
            ["content_free_text"] = Options.ContentFreeText,
            ["demonstration_separator"] = Options.DemonstrationSeparator,
            ["demonstrations"] = new JsonArray([.. _demonstrations.Select(d => new JsonObject { ["text"] = d.Text, ["text2"] = d.SecondText, ["label"] = d.Label })]),
            ["calibration"] = _calibration is null ? null : new JsonArray([.. _calibration.Select(p => JsonValue.Create(p))]),
        };
        var settings = new JsonObject
        {
            ["kind"] = Kind.ToString().ToLowerInvariant(),
            ["strategy"] = Strategy,
            ["max_length"] = MaxLength,
            ["prompt"] = prompt,
        };
        File.WriteAllText(Path.Combine(folder, TextClassifier.SettingsFile), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Class probabilities for texts, in input order, computed in batches under no-grad.</summary>
    /// <param name="texts">First texts.</param>
    /// <param name="secondTexts">Second texts (when the template has <c>{text2}</c>), or null.</param>
    /// <param name="batchSize">The most rows per forward pass.</param>
    /// <returns>One probability vector per row, in label order: the softmax of the label-word scores, divided by the calibration when there is one.</returns>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize = 64) =>
        ProbabilitiesIn(texts, secondTexts, batchSize, InferencePrecision);

    private float[][] ProbabilitiesIn(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize, InferencePrecision precision)
    {
        var scores = ScoresIn(texts, secondTexts, batchSize, precision);
        var result = new float[scores.Length][];
        for (var r = 0; r < scores.Length; r++)
        {
            var row = scores[r];
            if (_calibration is not null)
            {
                row = [.. row.Select((s, k) => s - Math.Log(Math.Max(_calibration[k], double.Epsilon)))];
            }

            result[r] = Softmax(row);
        }

        return result;
    }

    /// <summary>
    /// The log-probability of each class's label word given each row's prompt: for a word of several tokens the sum
    /// of its tokens' log-probabilities (teacher forced), or their mean with <see cref="PromptOptions.LengthNormalized"/>.
    /// Uncalibrated; computed in <see cref="InferencePrecision"/>.
    /// </summary>
    /// <param name="texts">First texts.</param>
    /// <param name="secondTexts">Second texts (when the template has <c>{text2}</c>), or null.</param>
    /// <param name="batchSize">The most rows per forward pass.</param>
    /// <returns>One score per class for each row.</returns>
    /// <exception cref="ArgumentException">Second texts are given for a template without <c>{text2}</c>, or the other way round.</exception>
    public double[][] ScoreLabelWords(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize = 64) =>
        ScoresIn(texts, secondTexts, batchSize, InferencePrecision);

    private double[][] ScoresIn(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize, InferencePrecision precision)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        CheckPairs(texts, secondTexts);
        using var span = TransformerTelemetry.ActivitySource.StartActivity("ScorePrompts");
        span?.SetTag("rows", texts.Count);
        var model = _inference.ForScoring(precision);
        var result = new double[texts.Count][];
        using var _ = no_grad();
        var tokenizing = TransformerTelemetry.Start(TransformerTelemetry.Tokenization);
        var prompts = new PromptRow[texts.Count];
        for (var i = 0; i < prompts.Length; i++)
        {
            prompts[i] = _encoder.Encode(texts[i] ?? string.Empty, secondTexts?[i]);
        }

        TransformerTelemetry.Stop(TransformerTelemetry.Tokenization, tokenizing);

        foreach (var pass in TextClassifier.PassesByLength([.. prompts.Select(p => p.Ids.Length)], batchSize, Model.Config))
        {
            using var scope = NewDisposeScope();
            var scores = Score(model, [.. pass.Select(i => prompts[i])]);
            for (var r = 0; r < pass.Length; r++)
            {
                result[pass[r]] = scores[r];
            }
        }

        return result;
    }

    /// <summary>
    /// Puts these demonstrations before every prompt (replacing any), and recomputes the calibration when enabled.
    /// </summary>
    /// <param name="demonstrations">Labelled examples, in the order they appear.</param>
    /// <exception cref="ArgumentException">A demonstration's class is out of range, or its texts do not suit the template.</exception>
    public void SetDemonstrations(IReadOnlyList<Demonstration> demonstrations)
    {
        UseDemonstrations(demonstrations);
        Recalibrate();
    }

    /// <summary>
    /// Picks <paramref name="shots"/> demonstrations from labelled rows, balanced across classes (round robin over the
    /// classes, each class's rows in a seeded random order) and then in a seeded random order, so the same seed picks the same.
    /// </summary>
    /// <param name="data">The rows to pick from.</param>
    /// <param name="classCount">The number of classes.</param>
    /// <param name="shots">How many to pick (fewer when the data has fewer rows).</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The demonstrations.</returns>
    public static IReadOnlyList<Demonstration> SelectDemonstrations(LabeledTexts data, int classCount, int shots, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(shots);
        var random = new Random(seed);
        var byClass = Enumerable.Range(0, classCount).Select(c =>
        {
            var rows = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == c).ToArray();
            random.Shuffle(rows);
            return rows;
        }).ToArray();

        var picked = new List<int>();
        for (var round = 0; picked.Count < shots && byClass.Any(rows => rows.Length > round); round++)
        {
            foreach (var rows in byClass.Where(rows => rows.Length > round))
            {
                if (picked.Count < shots)
                {
                    picked.Add(rows[round]);
                }
            }
        }

        var order = picked.ToArray();
        random.Shuffle(order);
        return [.. order.Select(i => new Demonstration(data.Texts[i], data.SecondTexts?[i], data.Labels[i]))];
    }

    /// <summary>
    /// Recomputes the contextual calibration from the content-free input with the current weights and demonstrations
    /// (a no-op unless <see cref="PromptOptions.Calibrate"/> is set). Training does this itself.
    /// </summary>
    public void Recalibrate()
    {
        if (!Options.Calibrate)
        {
            _calibration = null;
            return;
        }

        _calibration = null;
        var content = Options.ContentFreeText;
        var scores = ScoresIn([content], Template.HasSecondText ? [content] : null, 1, InferencePrecision.Float32)[0];
        _calibration = [.. Softmax(scores).Select(p => (double)p)];
    }

    /// <summary>Frees the network's native memory, and its bfloat16 copy if there is one.</summary>
    public void Dispose()
    {
        _inference.Dispose();
        Model.Dispose();
    }

    /// <summary>Whether a bfloat16 copy of the weights is alive (for tests).</summary>
    internal bool HasInferenceCopy => _inference.HasCopy;

    nn.Module ITrainableClassifier<PromptRow>.Module => Model;

    int ITrainableClassifier<PromptRow>.ClassCount => Labels.Count;

    PromptRow ITrainableClassifier<PromptRow>.EncodeForTraining(string text, string? secondText)
    {
        CheckPairs([text], secondText is null ? null : [secondText]);
        return _encoder.Encode(text ?? string.Empty, secondText);
    }

    int ITrainableClassifier<PromptRow>.TokenCount(PromptRow row) => row.Ids.Length;

    /// <summary>
    /// Decoder: the causal-LM loss of the true label word's tokens given the prompt (prompt tokens are not targets).
    /// Encoder: cross-entropy over the label words' logits at the mask (PET).
    /// </summary>
    Tensor ITrainableClassifier<PromptRow>.Loss(IReadOnlyList<PromptRow> rows, long[] labels)
    {
        if (Kind == ClassifierKind.Encoder)
        {
            var hidden = Hidden(Model, [.. rows.Select(r => r.Ids)], out var offsets);
            var head = TransformerTelemetry.Start(TransformerTelemetry.Forward);
            var atMask = hidden[tensor(Enumerable.Range(0, rows.Count).Select(r => (long)r).ToArray()),
                tensor(rows.Select((r, i) => (long)(offsets[i] + r.Position)).ToArray())];                   // (B, H)
            var wordLogits = Model.PredictTokens(atMask).index_select(1, tensor(_labelTokens.Select(t => (long)t[0]).ToArray())); // (B, K)
            var loss = nn.functional.cross_entropy(wordLogits, tensor(labels));
            TransformerTelemetry.Stop(TransformerTelemetry.Forward, head);
            return loss;
        }

        // Teacher forcing: the prompt then the true word but its last token; token j of the word is predicted at
        // position (end of prompt + j).
        var words = labels.Select(y => _labelTokens[y]).ToArray();
        var states = Hidden(Model, [.. rows.Select((r, i) => (int[])[.. r.Ids, .. words[i][..^1]])], out var columnOffsets);
        var lmHead = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var rowIndex = new List<long>();
        var columns = new List<long>();
        var targets = new List<long>();
        for (var i = 0; i < rows.Count; i++)
        {
            for (var j = 0; j < words[i].Length; j++)
            {
                rowIndex.Add(i);
                columns.Add(columnOffsets[i] + rows[i].Position + j);
                targets.Add(words[i][j]);
            }
        }

        var logits = Model.PredictTokens(states[tensor(rowIndex.ToArray()), tensor(columns.ToArray())]); // (N, V)
        var result = nn.functional.cross_entropy(logits, tensor(targets.ToArray()));
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, lmHead);
        return result;
    }

    // Validation selects the epoch to keep, so it scores the float32 weights being trained.
    float[][] ITrainableClassifier<PromptRow>.PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize) =>
        ProbabilitiesIn(texts, secondTexts, batchSize, InferencePrecision.Float32);

    void ITrainableClassifier<PromptRow>.BeforeValidation() => Recalibrate();

    void ITrainableClassifier<PromptRow>.WeightsChanged() => _inference.Discard();

    /// <summary>The tokenized prompt of one row, as it is scored.</summary>
    internal PromptRow EncodePrompt(string text, string? secondText) => _encoder.Encode(text, secondText);

    /// <summary>
    /// How the decoder pads training batches; both sides give the same losses (positions count real tokens only). Scoring
    /// lays out each prompt and its continuations itself (see <see cref="TreeHidden"/>).
    /// </summary>
    internal PaddingSide Padding { get; set; } = PaddingSide.Right;

    /// <summary>Label-word scores (B, K) of encoded prompts; the vocabulary logits become float32 before the log-softmax.</summary>
    private double[][] Score(LanguageModel model, IReadOnlyList<PromptRow> rows)
    {
        var classes = _labelTokens.Length;
        var scores = new double[rows.Count][];
        if (Kind == ClassifierKind.Encoder)
        {
            var hidden = Hidden(model, [.. rows.Select(r => r.Ids)], out var offsets);
            var head = TransformerTelemetry.Start(TransformerTelemetry.Forward);
            var atMask = hidden[tensor(Enumerable.Range(0, rows.Count).Select(r => (long)r).ToArray()),
                tensor(rows.Select((r, i) => (long)(offsets[i] + r.Position)).ToArray())];                       // (B, H)
            var logProbabilities = model.PredictTokens(atMask).to(ScalarType.Float32).log_softmax(-1)
                .index_select(1, tensor(_labelTokens.Select(t => (long)t[0]).ToArray()));                        // (B, K)
            var flat = logProbabilities.contiguous().data<float>().ToArray();
            for (var r = 0; r < rows.Count; r++)
            {
                scores[r] = [.. flat.AsSpan(r * classes, classes).ToArray().Select(v => (double)v)];
            }

            TransformerTelemetry.Stop(TransformerTelemetry.Forward, head);
            return scores;
        }

        // One sequence per row: the prompt, then every continuation (see TreeHidden); all words sharing a continuation are
        // read off the same positions. Row r, continuation c: word token 0 is predicted at the prompt's scored position,
        // token j ≥ 1 at the continuation's token j − 1.
        var continuations = _continuations.Length;
        var decoder = model as Gpt2LMHeadModel
            ?? throw new NotSupportedException($"Prompt scoring of decoders supports GPT-2 language models, not {model.GetType().Name}.");
        var (states, starts) = TreeHidden(decoder, rows);
        var lmHead = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var gatherRows = new List<long>();
        var gatherColumns = new List<long>();
        var firstGathered = new int[rows.Count * continuations];
        for (var r = 0; r < rows.Count; r++)
        {
            for (var c = 0; c < continuations; c++)
            {
                firstGathered[r * continuations + c] = gatherRows.Count;
                gatherRows.Add(r);
                gatherColumns.Add(rows[r].Position);
                for (var j = 0; j < _continuations[c].Length; j++)
                {
                    gatherRows.Add(r);
                    gatherColumns.Add(starts[r][c] + j);
                }
            }
        }

        var logits = model.PredictTokens(states[tensor(gatherRows.ToArray()), tensor(gatherColumns.ToArray())]); // (N, V)
        var logSoftmax = logits.to(ScalarType.Float32).log_softmax(-1);
        var pickRows = new List<long>();
        var pickTokens = new List<long>();
        for (var r = 0; r < rows.Count; r++)
        {
            for (var k = 0; k < classes; k++)
            {
                var first = firstGathered[r * continuations + _continuationOfWord[k]];
                for (var j = 0; j < _labelTokens[k].Length; j++)
                {
                    pickRows.Add(first + j);
                    pickTokens.Add(_labelTokens[k][j]);
                }
            }
        }

        var picked = logSoftmax[tensor(pickRows.ToArray()), tensor(pickTokens.ToArray())].data<float>().ToArray();
        var p = 0;
        for (var r = 0; r < rows.Count; r++)
        {
            scores[r] = new double[classes];
            for (var k = 0; k < classes; k++)
            {
                double sum = 0;
                for (var j = 0; j < _labelTokens[k].Length; j++)
                {
                    sum += picked[p++];
                }

                scores[r][k] = Options.LengthNormalized ? sum / _labelTokens[k].Length : sum;
            }
        }

        TransformerTelemetry.Stop(TransformerTelemetry.Forward, lmHead);
        return scores;
    }

    /// <summary>
    /// A decoder's final hidden states (B, T, H) for prompts followed by every continuation in one sequence per row:
    /// each continuation token attends to the prompt and to its own earlier tokens, at the position it would have right
    /// after the prompt, so the scores equal those of one sequence per continuation while the prompt is computed once.
    /// Right-padded; <c>Starts[r][c]</c> is the column of continuation c's first token in row r.
    /// </summary>
    private (Tensor States, int[][] Starts) TreeHidden(Gpt2LMHeadModel model, IReadOnlyList<PromptRow> rows)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var tail = _continuations.Sum(c => c.Length);
        var width = rows.Max(r => r.Ids.Length) + tail;
        var batch = rows.Count;
        var ids = new long[batch * width];
        var positions = new long[batch * width];
        var allowed = new bool[batch * width * width];
        var starts = new int[batch][];
        Array.Fill(ids, Tokenizer.PadTokenId);
        for (var r = 0; r < batch; r++)
        {
            var prompt = rows[r].Ids;
            var row = r * width;
            var square = r * width * width;
            for (var i = 0; i < prompt.Length; i++)
            {
                ids[row + i] = prompt[i];
                positions[row + i] = i;
                allowed.AsSpan(square + (i * width), i + 1).Fill(true);                 // causal over the prompt
            }

            starts[r] = new int[_continuations.Length];
            var column = prompt.Length;
            for (var c = 0; c < _continuations.Length; c++)
            {
                starts[r][c] = column;
                for (var j = 0; j < _continuations[c].Length; j++)
                {
                    var query = column + j;
                    ids[row + query] = _continuations[c][j];
                    positions[row + query] = prompt.Length + j;
                    allowed.AsSpan(square + (query * width), prompt.Length).Fill(true);          // the whole prompt
                    allowed.AsSpan(square + (query * width) + column, j + 1).Fill(true);         // its own earlier tokens
                }

                column += _continuations[c].Length;
            }

            for (var query = column; query < width; query++)
            {
                allowed[square + (query * width)] = true;   // padding: any finite row, never read
            }
        }

        var idsTensor = tensor(ids, [batch, width]);
        var positionsTensor = tensor(positions, [batch, width]);
        var allowedTensor = tensor(allowed, [batch, width, width]);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(rows.Sum(r => (long)r.Ids.Length + tail), (long)batch * width);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var states = model.TreeHiddenStates(idsTensor, positionsTensor, allowedTensor);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return (states, starts);
    }

    /// <summary>
    /// Final hidden states (B, T, H) of padded sequences; <paramref name="offsets"/> is each row's first column. Padding
    /// is timed as batching and the network as the forward pass (the callers time their head work after it).
    /// </summary>
    private Tensor Hidden(LanguageModel model, IReadOnlyList<int[]> sequences, out int[] offsets)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var side = Kind == ClassifierKind.Decoder ? Padding : PaddingSide.Right;
        var batch = EncodedBatch.Pad(sequences, null, Tokenizer.PadTokenId, side);
        offsets = [.. Enumerable.Range(0, batch.BatchSize).Select(batch.FirstTokenColumn)];
        var (ids, mask, _) = Batches.ToTensors(batch);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(batch.Lengths.Sum(), (long)batch.BatchSize * batch.SequenceLength);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var hidden = model.HiddenStates(ids, mask, null);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return hidden;
    }

    private void UseDemonstrations(IReadOnlyList<Demonstration> demonstrations)
    {
        ArgumentNullException.ThrowIfNull(demonstrations);
        for (var i = 0; i < demonstrations.Count; i++)
        {
            var d = demonstrations[i];
            if (d.Label < 0 || d.Label >= Labels.Count)
            {
                throw new ArgumentException($"Demonstration {i} has class index {d.Label}, outside the {Labels.Count} classes.", nameof(demonstrations));
            }

            if (d.Text is null || (d.SecondText is not null && !Template.HasSecondText))
            {
                throw new ArgumentException($"Demonstration {i} {(d.Text is null ? "has no text" : $"has a second text, but the template \"{Template}\" has no {PromptTemplate.SecondTextPlaceholder}")}.", nameof(demonstrations));
            }
        }

        _encoder = CreateEncoder(demonstrations);
        _demonstrations = [.. demonstrations];
    }

    private PromptEncoder CreateEncoder(IReadOnlyList<Demonstration> demonstrations) =>
        new(_pieces, Kind, Template, _labelTokens, demonstrations, Options.DemonstrationSeparator, _budget);

    private void CheckPairs(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts)
    {
        if (secondTexts is not null && secondTexts.Count != texts.Count)
        {
            throw new ArgumentException($"There are {secondTexts.Count} second texts for {texts.Count} texts; give one per text.", nameof(secondTexts));
        }

        if (secondTexts is not null && !Template.HasSecondText)
        {
            throw new ArgumentException(
                $"Second texts were given, but the prompt template \"{Template}\" has no {PromptTemplate.SecondTextPlaceholder} to put them in; use a pair template such as \"{PromptTemplate.DefaultFor(Kind, pairs: true)}\".",
                nameof(secondTexts));
        }

        if (secondTexts is null && Template.HasSecondText)
        {
            throw new ArgumentException($"The prompt template \"{Template}\" has {PromptTemplate.SecondTextPlaceholder}, but no second texts were given.", nameof(secondTexts));
        }
    }

    /// <summary>
    /// What a decoder must feed after the prompt to score every word: the maximal distinct word beginnings (each word
    /// but its last token). A word is read off the first continuation it begins; with single-token words the only
    /// continuation is empty, so one forward pass scores them all.
    /// </summary>
    private static (int[][] Continuations, int[] ContinuationOfWord) Continuations(int[][] words)
    {
        var beginnings = words.Select(w => w[..^1]).ToList();
        var maximal = beginnings
            .Where((b, i) => !beginnings.Where((other, j) => j != i && other.Length > b.Length && other.AsSpan(0, b.Length).SequenceEqual(b)).Any())
            .DistinctBy(b => string.Join(",", b))
            .ToArray();
        var ofWord = beginnings.Select(b => Array.FindIndex(maximal, c => c.Length >= b.Length && c.AsSpan(0, b.Length).SequenceEqual(b))).ToArray();
        return (maximal, ofWord);
    }

    private static float[] Softmax(double[] scores)
    {
        var max = scores.Max();
        var exp = scores.Select(s => Math.Exp(s - max)).ToArray();
        var sum = exp.Sum();
        return [.. exp.Select(e => (float)(e / sum))];
    }

    private static int SaturatingSubtract(int value, int amount) => value == int.MaxValue ? value : value - amount;

    /// <summary>An encoder's masked-LM head must come from the checkpoint: a fresh one would score the label words at random.</summary>
    private static void CheckHead(LanguageModel model, LoadReport report)
    {
        var missing = report.Missing.Concat(report.Mismatched)
            .Where(name => model.HeadPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
            .ToList();
        if (missing.Count > 0)
        {
            throw new InvalidDataException(
                $"The checkpoint {report.Source} has no masked-LM head, which the encoder prompt strategy scores label words with: {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} missing. " +
                "It is probably a fine-tuned classifier or a bare encoder; use a pretraining checkpoint that keeps its masked-LM head (as published, e.g. bert-base-uncased, roberta-base, distilbert-base-uncased), or the classification-head strategy.");
        }
    }

    private static string HuggingFaceClassName(ModelFamily family) => family switch
    {
        ModelFamily.Bert => "BertForMaskedLM",
        ModelFamily.Roberta => "RobertaForMaskedLM",
        ModelFamily.DistilBert => "DistilBertForMaskedLM",
        _ => "GPT2LMHeadModel",
    };
}
