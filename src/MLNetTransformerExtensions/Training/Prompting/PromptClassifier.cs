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
/// <c>{text} It was [MASK].</c> with <c>great</c> or <c>terrible</c>, in the style of PET; an encoder-decoder (BART,
/// T5) reads <c>sst2 sentence: {text}</c> and its decoder scores each class's target text (<c>positive</c>), teacher
/// forced, the T5 way. The class probabilities are
/// the softmax of the label words' scores (optionally calibrated), exactly as a head classifier outputs them.
/// </summary>
/// <remarks>
/// <para>Works zero-shot from a pretrained language model (no training), in context (few-shot demonstrations before the
/// prompt), or fine-tuned with <see cref="FineTuner.Train(PromptClassifier, LabeledTexts, LabeledTexts?, FineTuningOptions, IProgress{TrainingProgress}?, CancellationToken)"/>:
/// a decoder learns by the causal-LM loss of the true label word's tokens given the prompt, an encoder by
/// cross-entropy over the label words at the mask, an encoder-decoder by the cross-entropy of the true target's tokens
/// (HuggingFace's <c>labels=</c> loss).</para>
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
public sealed class PromptClassifier : IDisposable, ITrainableClassifier<PromptRow>, IExplainableClassifier
{
    /// <summary>The <c>strategy</c> our settings file records for prompt classifiers.</summary>
    internal const string Strategy = "prompt";

    private readonly PieceTokenizer _pieces;
    private readonly int[][] _labelTokens;
    private readonly LabelWordScorer _scorer;
    private readonly int _budget;
    private readonly InferenceModel<LanguageModel> _inference;
    private PromptEncoder _encoder;
    private IReadOnlyList<Demonstration> _demonstrations = [];
    private double[]? _calibration;

    private PromptClassifier(LanguageModel model, TransformerTokenizer tokenizer, ClassifierKind kind, int maxLength, PromptOptions options)
    {
        options.Validate();
        if (kind == ClassifierKind.EncoderDecoder && options.Shots > 0)
        {
            throw new ArgumentException($"{nameof(PromptOptions.Shots)} is {options.Shots}, but in-context demonstrations are not supported for encoder-decoders (their targets are texts of their own); use 0 and fine-tune instead.", nameof(options));
        }

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
        _scorer = LabelWordScorer.For(kind, _labelTokens, options.LengthNormalized);

        // A decoder reads the label word after the prompt, so the prompt leaves room for all but its last token.
        _budget = kind == ClassifierKind.Decoder ? Math.Min(maxLength, SaturatingSubtract(tokenizer.ModelMaxLength, _scorer.TokensAfterPrompt)) : maxLength;
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
        HeadClassifier.CheckKind(config, kind, folder, prompt: true);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        manual_seed(seed);
        var model = TransformerModels.CreateForLanguageModeling(config.WithLabels(labels));
        try
        {
            report = TransformerModels.LoadFromFolder(model, folder);
            if (report is not null && kind != ClassifierKind.EncoderDecoder)
            {
                CheckHead(model, report);
            }

            var classifier = new PromptClassifier(model, tokenizer, kind, HeadClassifier.ResolveMaxLength(maxLength, tokenizer), options);
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
        var settingsPath = Path.Combine(folder, HeadClassifier.SettingsFile);
        var settings = File.Exists(settingsPath) ? JsonNode.Parse(File.ReadAllText(settingsPath)) as JsonObject : null;
        if (settings?["strategy"]?.GetValue<string>() != Strategy || settings["prompt"] is not JsonObject prompt)
        {
            throw new InvalidDataException(
                $"'{folder}' has no prompt settings ({HeadClassifier.SettingsFile} with \"strategy\": \"{Strategy}\"). A classifier with a classification head loads with {nameof(HeadClassifier)}.{nameof(HeadClassifier.Load)}; a pretrained model becomes a prompt classifier with {nameof(FromPretrained)}.");
        }

        var kind = Enum.Parse<ClassifierKind>(settings["kind"]!.GetValue<string>(), ignoreCase: true);
        HeadClassifier.CheckKind(config, kind, folder, prompt: true);
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
            var classifier = new PromptClassifier(model, tokenizer, kind, HeadClassifier.ResolveMaxLength(settings["max_length"]?.GetValue<int>(), tokenizer), options);
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
        File.WriteAllText(Path.Combine(folder, HeadClassifier.SettingsFile), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
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
            result[r] = ContextualCalibration.Probabilities(scores[r], _calibration);
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

        foreach (var pass in HeadClassifier.PassesByLength([.. prompts.Select(p => p.Ids.Length)], batchSize, Model.Config))
        {
            using var scope = NewDisposeScope();
            var scores = _scorer.Score(model, [.. pass.Select(i => prompts[i])], Tokenizer.PadTokenId);
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
    public static IReadOnlyList<Demonstration> SelectDemonstrations(LabeledTexts data, int classCount, int shots, int seed) =>
        DemonstrationPicker.Balanced(data, classCount, shots, seed);

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
        _calibration = ContextualCalibration.FromContentFreeScores(scores);
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
    Tensor ITrainableClassifier<PromptRow>.Loss(IReadOnlyList<PromptRow> rows, long[] labels) => _scorer.Loss(Model, rows, labels, Tokenizer.PadTokenId);

    // Validation selects the epoch to keep, so it scores the float32 weights being trained.
    float[][] ITrainableClassifier<PromptRow>.PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize) =>
        ProbabilitiesIn(texts, secondTexts, batchSize, InferencePrecision.Float32);

    void ITrainableClassifier<PromptRow>.BeforeValidation() => Recalibrate();

    void ITrainableClassifier<PromptRow>.WeightsChanged() => _inference.Discard();

    TransformerModel IExplainableClassifier.Network => Model;

    int[] IExplainableClassifier.ExplainedTokens(string text, string? secondText) => ExplainedRow(text, secondText).Ids;

    Tensor IExplainableClassifier.ClassScores(string text, string? secondText, int copies) =>
        _scorer.ScoreTensor(Model, [.. Enumerable.Repeat(ExplainedRow(text, secondText), copies)], Tokenizer.PadTokenId);

    private PromptRow ExplainedRow(string text, string? secondText)
    {
        CheckPairs([text], secondText is null ? null : [secondText]);
        return _encoder.Encode(text ?? string.Empty, secondText);
    }

    /// <summary>The tokenized prompt of one row, as it is scored.</summary>
    internal PromptRow EncodePrompt(string text, string? secondText) => _encoder.Encode(text, secondText);

    /// <summary>
    /// How the decoder pads training batches; both sides give the same losses (positions count real tokens only). Scoring
    /// lays out each prompt and its continuations itself (see <see cref="ContinuationScorer"/>).
    /// </summary>
    internal PaddingSide Padding
    {
        get => (_scorer as ContinuationScorer)?.Padding ?? PaddingSide.Right;
        set
        {
            if (_scorer is ContinuationScorer continuations)
            {
                continuations.Padding = value;
            }
        }
    }

    private void UseDemonstrations(IReadOnlyList<Demonstration> demonstrations)
    {
        ArgumentNullException.ThrowIfNull(demonstrations);
        if (Kind == ClassifierKind.EncoderDecoder && demonstrations.Count > 0)
        {
            throw new ArgumentException("In-context demonstrations are not supported for encoder-decoders (their targets are texts of their own).", nameof(demonstrations));
        }

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
        ModelFamily.Bart => "BartForConditionalGeneration",
        ModelFamily.T5 => "T5ForConditionalGeneration",
        _ => "GPT2LMHeadModel",
    };
}
