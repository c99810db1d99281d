using Microsoft.ML;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>How a transformer candidate classifies.</summary>
public enum TransformerCandidateKind
{
    /// <summary>An encoder (BERT, RoBERTa, DistilBERT) with a classification head on the first token.</summary>
    EncoderHead,

    /// <summary>An encoder's masked-LM head scoring one label word per class at the mask of a prompt (PET); needs a checkpoint with its MLM head.</summary>
    EncoderPrompt,

    /// <summary>A decoder (GPT-2) with a classification head on the last real token.</summary>
    DecoderHead,

    /// <summary>A decoder's next-token head scoring one label word per class after a prompt.</summary>
    DecoderPrompt,

    /// <summary>BART with its classification head on the decoder's state at the last end-of-sequence token.</summary>
    Seq2SeqHead,

    /// <summary>BART's LM head or T5 scoring each class's target text after a prompt (text-to-text).</summary>
    Seq2SeqPrompt,
}

/// <summary>
/// A transformer fine-tuned through the <c>EncoderClassifier</c> / <c>DecoderClassifier</c> trainers: one model and
/// one way to classify.
/// </summary>
/// <remarks>
/// <para>Search space (index 0 is the middle of each range): learning rate log-uniform within a factor 3 of the kind's
/// default (1e-4 for models up to 512 wide, which this project measured to suit small models such as MiniLM; 3e-5 for
/// wider ones, HuggingFace's usual choice), epochs 1–4 (default 3), batch size 16 or 32 (default 32), warm-up ratio
/// 0, 0.06 or 0.1 (default 0.1), weight decay 0, 0.01 or 0.1 (default 0.01). The maximum length is not searched: it is
/// the 95th percentile of the training texts' token counts under this model's tokenizer (plus the prompt's words for
/// prompt kinds), rounded up to a multiple of 8 and capped by the model, so 95 % of rows are never truncated and
/// batches are not padded for the longest outlier.</para>
/// <para>Trials with more than one epoch validate after every epoch and keep the best epoch (patience 1); the
/// experiment stops a trial whose validation accuracy after an epoch is far below the best trial's.</para>
/// </remarks>
public sealed class TransformerCandidate : ExperimentCandidate
{
    // Measured by this project on 2 cores (MiniLM, SST-2): training runs at roughly 1e11 multiply-adds per second;
    // the cost model starts from it and then uses the times it measures.
    private const double AssumedFlopsPerSecond = 1e11;
    private const int PromptOverheadTokens = 8;

    private readonly HubOptions? _hub;
    private string? _folder;
    private int _maxLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength;
    private double _defaultLearningRate = 3e-5;
    private double _secondsPerRow = 0.05;

    /// <summary>A transformer candidate.</summary>
    /// <param name="model">A model folder, a built-in model (<c>builtin:...</c>) or a HuggingFace hub id.</param>
    /// <param name="kind">How it classifies; must suit the model's family (decoder kinds need GPT-2).</param>
    /// <param name="hub">Where hub ids are downloaded from; null reads huggingface_hub's environment variables.</param>
    public TransformerCandidate(string model, TransformerCandidateKind kind, HubOptions? hub = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (!Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a transformer candidate kind.");
        }

        Model = model;
        Kind = kind;
        _hub = hub;
    }

    /// <summary>The model as the user named it.</summary>
    public string Model { get; }

    /// <summary>How it classifies.</summary>
    public TransformerCandidateKind Kind { get; }

    /// <inheritdoc/>
    public override string Name => $"{KindName(Kind)} {Model}";

    /// <inheritdoc/>
    public override bool IsExpensive => true;

    /// <summary>The maximum length chosen from the data (after <see cref="Prepare"/>).</summary>
    public int MaximumLength => _maxLength;

    /// <inheritdoc/>
    public override double EstimatedSecondsPerRow => _secondsPerRow;

    /// <summary>The short name of a kind, as leaderboards show it.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns><c>encoder-head</c>, <c>encoder-prompt</c>, <c>decoder-head</c> or <c>decoder-prompt</c>.</returns>
    public static string KindName(TransformerCandidateKind kind) => kind switch
    {
        TransformerCandidateKind.EncoderHead => "encoder-head",
        TransformerCandidateKind.EncoderPrompt => "encoder-prompt",
        TransformerCandidateKind.DecoderHead => "decoder-head",
        TransformerCandidateKind.DecoderPrompt => "decoder-prompt",
        TransformerCandidateKind.Seq2SeqHead => "seq2seq-head",
        TransformerCandidateKind.Seq2SeqPrompt => "seq2seq-prompt",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Resolves the model, checks it suits the kind, and measures the texts' token lengths under its tokenizer.</summary>
    /// <inheritdoc/>
    public override void Prepare(ExperimentData data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        var folder = ModelLocator.Resolve(Model, _hub, cancellationToken: cancellationToken);
        var config = TransformerConfig.FromFolder(folder);
        var decoder = Kind is TransformerCandidateKind.DecoderHead or TransformerCandidateKind.DecoderPrompt;
        var seq2seq = Kind is TransformerCandidateKind.Seq2SeqHead or TransformerCandidateKind.Seq2SeqPrompt;
        if (decoder != (config.Family == ModelFamily.Gpt2) || seq2seq != config.IsEncoderDecoder
            || (Kind == TransformerCandidateKind.Seq2SeqHead && config.Family != ModelFamily.Bart))
        {
            var needs = decoder ? "a GPT-2 decoder" : Kind == TransformerCandidateKind.Seq2SeqHead ? "BART" : seq2seq ? "an encoder-decoder (BART, T5)" : "an encoder (BERT, RoBERTa, DistilBERT)";
            throw new InvalidDataException($"'{Model}' is a {config.Family} model; the {KindName(Kind)} candidate needs {needs}.");
        }

        var tokenizer = TransformerTokenizer.FromFolder(folder);
        var lengths = data.SampleTexts.Select((text, i) => tokenizer.Encode(text, data.SampleSecondTexts?[i], int.MaxValue).Length).Order().ToList();
        var p95 = lengths.Count == 0 ? 16 : lengths[Math.Min(lengths.Count - 1, (int)Math.Ceiling(0.95 * lengths.Count) - 1)];
        var prompt = Kind is TransformerCandidateKind.EncoderPrompt or TransformerCandidateKind.DecoderPrompt or TransformerCandidateKind.Seq2SeqPrompt ? PromptOverheadTokens : 0;
        var cap = Math.Min(tokenizer.ModelMaxLength, config.MaxPositions);
        _maxLength = Math.Min(cap, Math.Max(16, (p95 + prompt + 7) / 8 * 8));
        _defaultLearningRate = config.HiddenSize <= 512 ? 1e-4 : 3e-5;

        // Training costs about 6 multiply-adds per parameter and token; a layer holds about 12·hidden² parameters.
        var meanTokens = lengths.Count == 0 ? 16 : Math.Min(_maxLength, lengths.Average() + prompt);
        var parameters = 12.0 * (config.NumLayers + (config.IsEncoderDecoder ? config.DecoderLayers : 0)) * config.HiddenSize * config.HiddenSize;
        _secondsPerRow = 6 * parameters * meanTokens / AssumedFlopsPerSecond;
        _folder = folder;
    }

    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index)
    {
        ArgumentNullException.ThrowIfNull(random);
        var center = _defaultLearningRate;
        return new Hyperparameters(
        [
            new("learning_rate", index == 0 ? center : SearchSpace.LogUniform(random, center / 3, center * 3)),
            new("epochs", index == 0 ? 3 : SearchSpace.Choice(random, 1, 2, 3, 4)),
            new("batch_size", index == 0 ? 32 : SearchSpace.Choice(random, 16, 32)),
            new("warmup_ratio", index == 0 ? 0.1 : SearchSpace.Choice(random, 0, 0.06, 0.1)),
            new("weight_decay", index == 0 ? 0.01 : SearchSpace.Choice(random, 0, 0.01, 0.1)),
            new("max_length", _maxLength),
        ]);
    }

    /// <inheritdoc/>
    public override double Epochs(Hyperparameters hyperparameters) => hyperparameters.GetValueOrDefault("epochs", 3);

    /// <inheritdoc/>
    public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(setup);
        TransformerClassifierOptions options = Kind switch
        {
            TransformerCandidateKind.DecoderHead or TransformerCandidateKind.DecoderPrompt => new DecoderClassifierOptions(),
            TransformerCandidateKind.Seq2SeqHead or TransformerCandidateKind.Seq2SeqPrompt => new EncoderDecoderClassifierOptions(),
            _ => new EncoderClassifierOptions(),
        };
        var h = setup.Hyperparameters;
        var epochs = (int)h.GetValueOrDefault("epochs", TransformerClassifierOptions.FineTuningDefaults.Epochs);
        var validate = epochs > 1 && setup.ValidationSet is not null;
        options.LabelColumnName = setup.LabelKeyColumnName;
        options.TextColumnName = setup.TextColumnName;
        options.SecondTextColumnName = setup.SecondTextColumnName;
        options.PredictedLabelColumnName = setup.PredictedLabelKeyColumnName;
        options.ModelPath = _folder ?? Model;
        options.Hub = _hub;
        options.Strategy = Kind is TransformerCandidateKind.EncoderPrompt or TransformerCandidateKind.DecoderPrompt or TransformerCandidateKind.Seq2SeqPrompt
            ? ClassificationStrategy.Prompt : ClassificationStrategy.Head;
        options.NumberOfEpochs = epochs;
        options.LearningRate = h.GetValueOrDefault("learning_rate", TransformerClassifierOptions.FineTuningDefaults.LearningRate);
        options.BatchSize = (int)h.GetValueOrDefault("batch_size", TextClassificationOptions.Defaults.BatchSize);
        options.WarmupRatio = h.GetValueOrDefault("warmup_ratio", TransformerClassifierOptions.FineTuningDefaults.WarmupRatio);
        options.WeightDecay = h.GetValueOrDefault("weight_decay", TransformerClassifierOptions.FineTuningDefaults.WeightDecay);
        options.MaximumLength = (int)h.GetValueOrDefault("max_length", _maxLength);
        options.ValidationSet = validate ? setup.ValidationSet : null;
        options.EarlyStoppingPatience = validate ? 1 : null;
        options.Progress = setup.TrainingProgress;
        options.CancellationToken = setup.CancellationToken;
        return options switch
        {
            DecoderClassifierOptions decoder => mlContext.MulticlassClassification.Trainers.DecoderClassifier(decoder),
            EncoderDecoderClassifierOptions encoderDecoder => mlContext.MulticlassClassification.Trainers.EncoderDecoderClassifier(encoderDecoder),
            _ => mlContext.MulticlassClassification.Trainers.EncoderClassifier((EncoderClassifierOptions)options),
        };
    }

    /// <summary>
    /// Whether the folder's checkpoint keeps a masked-LM head (BERT's <c>cls.predictions</c>, RoBERTa's <c>lm_head</c>,
    /// DistilBERT's <c>vocab_projector</c>), which the encoder prompt kind scores with. Null when the weights are not a
    /// single safetensors file, whose names can be read without loading it.
    /// </summary>
    /// <param name="folder">A model folder.</param>
    /// <returns>True, false, or null when unknown.</returns>
    internal static bool? HasMaskedLanguageModelHead(string folder)
    {
        var path = Path.Combine(folder, Checkpoints.CheckpointFiles.SafeTensorsName);
        if (!File.Exists(path))
        {
            return null;
        }

        return Checkpoints.SafeTensorsFile.ReadHeader(path).Keys.Any(name =>
            name.StartsWith("cls.predictions.", StringComparison.Ordinal) || name.StartsWith("lm_head.", StringComparison.Ordinal)
            || name.StartsWith("vocab_projector.", StringComparison.Ordinal));
    }
}
