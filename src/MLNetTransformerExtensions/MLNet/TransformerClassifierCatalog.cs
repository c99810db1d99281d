using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Training;

[assembly: TextClassifierKind(TransformerTextClassifier.Kind, typeof(TransformerTextClassifierLoader))]
[assembly: TextClassifierKind(PromptTextClassifier.Kind, typeof(PromptTextClassifierLoader))]

namespace MLNetTransformerExtensions.MLNet;

/// <summary>How a transformer turns its final hidden states into classes.</summary>
public enum ClassificationStrategy
{
    /// <summary>A classification head (HuggingFace's <c>*ForSequenceClassification</c>) on the first token (encoders) or the last real token (decoders).</summary>
    Head,

    /// <summary>
    /// A prompt and one label word per class, scored by the language-model head: GPT-2's next-token head after
    /// <c>Review: {text} Sentiment:</c>, or an encoder's masked-LM head at the mask of <c>{text} It was {mask}.</c>.
    /// Works zero-shot (0 epochs), few-shot (<see cref="TransformerClassifierOptions.Shots"/>) or fine-tuned on the label words.
    /// </summary>
    Prompt,
}

/// <summary>Options of the transformer trainers: columns (from <see cref="TextClassificationOptions"/>), the model, and fine-tuning.</summary>
public abstract class TransformerClassifierOptions : TextClassificationOptions
{
    /// <summary>
    /// The model to fine-tune: a HuggingFace model folder (config.json, weights, tokenizer files), or a HuggingFace Hub id
    /// (<c>name</c>, <c>owner/name</c>, optionally <c>@revision</c>) downloaded once into huggingface_hub's cache.
    /// A folder with no weights trains from scratch.
    /// </summary>
    public string ModelPath = string.Empty;

    /// <summary>Passes over the training data; 0 keeps the checkpoint's weights as they are.</summary>
    public int NumberOfEpochs = FineTuningDefaults.Epochs;

    /// <summary>Peak learning rate of AdamW, reached after warm-up, then decayed linearly to 0.</summary>
    public double LearningRate = FineTuningDefaults.LearningRate;

    /// <summary>Decoupled weight decay; never applied to biases and LayerNorm weights.</summary>
    public double WeightDecay = FineTuningDefaults.WeightDecay;

    /// <summary>Share of optimisation steps spent warming the learning rate up.</summary>
    public double WarmupRatio = FineTuningDefaults.WarmupRatio;

    /// <summary>Global gradient-norm clipping; 0 disables it.</summary>
    public double MaxGradientNorm = FineTuningDefaults.MaxGradNorm;

    /// <summary>Batches whose gradients are summed before each optimiser step.</summary>
    public int GradientAccumulationSteps = 1;

    /// <summary>Longest input in tokens (special tokens included); longer texts are truncated. Null: the model's maximum.</summary>
    public int? MaximumLength = FineTuningDefaults.MaxLength;

    /// <summary>With a <see cref="TextClassificationOptions.ValidationSet"/>: stop after this many epochs without a better validation accuracy, and keep the best epoch.</summary>
    public int? EarlyStoppingPatience;

    /// <summary>Head (default) or prompt-based classification.</summary>
    public ClassificationStrategy Strategy = ClassificationStrategy.Head;

    /// <summary>Prompt strategy: the template, with <c>{text}</c> (and <c>{text2}</c> for pairs; <c>{mask}</c> for encoders). Null: a sentiment default.</summary>
    public string? PromptTemplate;

    /// <summary>
    /// Prompt strategy: one label word per class, as <c>"positive= positive,negative= negative"</c> (class=word; a
    /// leading space matters for GPT-2 and RoBERTa vocabularies). Null: derived from the class names (negative/positive
    /// style names and Boolean labels map to sentiment words; other names are used as they are).
    /// </summary>
    public string? LabelWords;

    /// <summary>Prompt strategy: demonstrations per class prepended to every prompt (chosen from the training data, seeded, balanced).</summary>
    public int Shots;

    /// <summary>Prompt strategy: contextual calibration, dividing label-word probabilities by those of a content-free input.</summary>
    public bool Calibrate;

    /// <summary>Prompt strategy: average rather than sum the log-probabilities of multi-token label words.</summary>
    public bool LengthNormalizedLabelWords;

    /// <summary>Where and how hub ids are downloaded; null reads huggingface_hub's environment variables (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN).</summary>
    public HubOptions? Hub;

    /// <summary>
    /// The number format the fitted transformer scores in (training and validation always run in float32). bfloat16
    /// is several times faster on CPUs with bfloat16 instructions and moves probabilities by about 10⁻²; see
    /// <see cref="Training.InferencePrecision"/>. It is saved with the model and can be changed on the fitted
    /// transformer (<see cref="TextClassificationTransformer.InferencePrecision"/>).
    /// </summary>
    public InferencePrecision InferencePrecision = InferencePrecision.Float32;

    internal FineTuningOptions ToFineTuning() => new()
    {
        Epochs = NumberOfEpochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        WarmupRatio = WarmupRatio,
        MaxGradNorm = MaxGradientNorm,
        GradientAccumulationSteps = GradientAccumulationSteps,
        MaxLength = MaximumLength,
        EarlyStoppingPatience = EarlyStoppingPatience,
        InferenceBatchSize = BatchSize,
    };

    /// <summary>The defaults of fine-tuning.</summary>
    public static class FineTuningDefaults
    {
        /// <summary>Default number of epochs.</summary>
        public const int Epochs = 3;

        /// <summary>Default peak learning rate.</summary>
        public const double LearningRate = 5e-5;

        /// <summary>Default weight decay.</summary>
        public const double WeightDecay = 0.01;

        /// <summary>Default warm-up share.</summary>
        public const double WarmupRatio = 0.1;

        /// <summary>Default gradient clipping norm.</summary>
        public const double MaxGradNorm = 1.0;

        /// <summary>Default maximum length in tokens.</summary>
        public const int MaxLength = 128;
    }
}

/// <summary>Options of <c>EncoderClassifier</c>: BERT, RoBERTa or DistilBERT, classifying from the first token.</summary>
public sealed class EncoderClassifierOptions : TransformerClassifierOptions
{
}

/// <summary>Options of <c>DecoderClassifier</c>: GPT-2, classifying from the last real token (padding = end-of-text when the model has no pad token).</summary>
public sealed class DecoderClassifierOptions : TransformerClassifierOptions
{
}

/// <summary>
/// The transformer trainers in ML.NET's catalogs: <c>mlContext.MulticlassClassification.Trainers.EncoderClassifier(...)</c>,
/// <c>...DecoderClassifier(...)</c>, and the same on <c>BinaryClassification.Trainers</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns.</b> Input: a text column (String), an optional second text column (sentence pairs),
/// and the label: a key (from <c>MapValueToKey</c>) for multiclass, Boolean for binary. Output, as ML.NET's own trainers:
/// multiclass <c>Score</c> (vector of class probabilities in key order) and <c>PredictedLabel</c> (the label's key type);
/// binary <c>Score</c> (log-odds), <c>Probability</c> and <c>PredictedLabel</c> (Boolean).</para>
/// <para><b>Trainer characteristics.</b> Fine-tunes every weight with AdamW (linear warm-up and decay, gradient clipping);
/// needs no normalisation or caching; <c>Transform</c> is lazy and batched; the whole model (weights, tokenizer, labels,
/// options) is saved inside the ML.NET model file. Empty or whitespace-only texts are classified like any other text.</para>
/// </remarks>
public static class TransformerClassifierCatalog
{
    /// <summary>Fine-tunes an encoder (BERT, RoBERTa, DistilBERT) to classify texts into the label's classes.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="labelColumnName">The label column: a key type, as <c>MapValueToKey</c> makes.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace model folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column for sentence pairs, or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.EncoderClassifier(Fill(new EncoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes an encoder with every option.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="options">Columns, model and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, EncoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Multiclass, options, ClassifierKind.Encoder);

    /// <summary>Fine-tunes an encoder (BERT, RoBERTa, DistilBERT) for a Boolean label.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="labelColumnName">The Boolean label column.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace model folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column for sentence pairs, or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.EncoderClassifier(Fill(new EncoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes an encoder for a Boolean label, with every option.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="options">Columns, model and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, EncoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Binary, options, ClassifierKind.Encoder);

    /// <summary>Fine-tunes a decoder (GPT-2) to classify texts from the last real token.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="labelColumnName">The label column: a key type, as <c>MapValueToKey</c> makes.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace GPT-2 folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column (appended after the first), or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator DecoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.DecoderClassifier(Fill(new DecoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes a decoder with every option.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="options">Columns, model and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator DecoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, DecoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Multiclass, options, ClassifierKind.Decoder);

    /// <summary>Fine-tunes a decoder (GPT-2) for a Boolean label.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="labelColumnName">The Boolean label column.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace GPT-2 folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column, or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator DecoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.DecoderClassifier(Fill(new DecoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes a decoder for a Boolean label, with every option.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="options">Columns, model and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator DecoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, DecoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Binary, options, ClassifierKind.Decoder);

    private static T Fill<T>(T options, string label, string text, string modelPath, string? secondText, int epochs, int batchSize, double learningRate, int? maximumLength)
        where T : TransformerClassifierOptions
    {
        options.LabelColumnName = label;
        options.TextColumnName = text;
        options.ModelPath = modelPath;
        options.SecondTextColumnName = secondText;
        options.NumberOfEpochs = epochs;
        options.BatchSize = batchSize;
        options.LearningRate = learningRate;
        options.MaximumLength = maximumLength;
        return options;
    }

    private static TextClassificationEstimator Create(IHostEnvironment env, TextClassificationTask task, TransformerClassifierOptions options, ClassifierKind kind)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ModelPath))
        {
            throw new ArgumentException("ModelPath must name a HuggingFace model folder or hub id (e.g. 'distilbert-base-uncased').", nameof(options));
        }

        var fineTuning = options.ToFineTuning();
        fineTuning.Validate();
        if (!Enum.IsDefined(options.InferencePrecision))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.InferencePrecision, $"InferencePrecision must be {nameof(InferencePrecision.Float32)} or {nameof(InferencePrecision.BFloat16)}.");
        }
        if (options.Strategy == ClassificationStrategy.Prompt)
        {
            if (options.Shots < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(options), options.Shots, "Shots must be 0 or more.");
            }

            if (options.PromptTemplate is not null)
            {
                Training.PromptTemplate.Parse(options.PromptTemplate);
            }

            return new TextClassificationEstimator(env, task, options, new PromptTrainer(options, kind, fineTuning), PromptTextClassifier.Kind);
        }

        return new TextClassificationEstimator(env, task, options,
            new FineTuningTrainer(options.ModelPath, options.Hub, kind, fineTuning, options.InferencePrecision), TransformerTextClassifier.Kind);
    }
}

/// <summary>A classifier that can score in another number format than float32.</summary>
internal interface IInferencePrecisionSetting
{
    /// <summary>The number format scoring runs in.</summary>
    InferencePrecision InferencePrecision { get; set; }
}

/// <summary>The ML.NET face of a <see cref="TextClassifier"/>.</summary>
internal sealed class TransformerTextClassifier(TextClassifier inner) : ITextClassifier, IInferencePrecisionSetting
{
    /// <summary>Stored in model files to find the loader: never rename.</summary>
    public const string Kind = "transformer";

    public TextClassifier Inner => inner;

    public int ClassCount => inner.Labels.Count;

    public InferencePrecision InferencePrecision
    {
        get => inner.InferencePrecision;
        set => inner.InferencePrecision = value;
    }

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
        inner.PredictProbabilities(texts, secondTexts, Math.Max(1, texts.Count));

    public void SaveTo(string folder) => inner.Save(folder);

    public void Dispose() => inner.Dispose();
}

/// <summary>Restores a <see cref="TransformerTextClassifier"/> from the folder stored in a model file.</summary>
internal sealed class TransformerTextClassifierLoader : ITextClassifierLoader
{
    public ITextClassifier Load(string folder) => new TransformerTextClassifier(TextClassifier.Load(folder));
}

/// <summary>Builds a classifier from the model path and fine-tunes it on the rows the estimator read.</summary>
internal sealed class FineTuningTrainer(string modelPath, HubOptions? hub, ClassifierKind kind, FineTuningOptions options, InferencePrecision precision) : ITextClassifierTrainer
{
    public ITextClassifier Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassifierTrainingContext context)
    {
        var setup = TransformerTelemetry.Start(TransformerTelemetry.Setup);
        var folder = ModelLocator.Resolve(modelPath, hub, cancellationToken: context.CancellationToken);
        var classifier = TextClassifier.FromPretrained(folder, classNames, kind, options.MaxLength, context.Seed, out var report);
        TransformerTelemetry.Stop(TransformerTelemetry.Setup, setup);
        context.Log(report?.ToString() ?? $"'{folder}' has no weights: training from scratch.");
        try
        {
            FineTuner.Train(classifier, training, validation, options with { Seed = context.Seed }, context.Progress, context.CancellationToken);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }

        classifier.InferencePrecision = precision;
        return new TransformerTextClassifier(classifier);
    }
}

/// <summary>The ML.NET face of a <see cref="PromptClassifier"/>.</summary>
internal sealed class PromptTextClassifier(PromptClassifier inner) : ITextClassifier, IInferencePrecisionSetting
{
    /// <summary>Stored in model files to find the loader: never rename.</summary>
    public const string Kind = "transformer-prompt";

    public int ClassCount => inner.Labels.Count;

    public InferencePrecision InferencePrecision
    {
        get => inner.InferencePrecision;
        set => inner.InferencePrecision = value;
    }

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
        inner.PredictProbabilities(texts, secondTexts, Math.Max(1, texts.Count));

    public void SaveTo(string folder) => inner.Save(folder);

    public void Dispose() => inner.Dispose();
}

/// <summary>Restores a <see cref="PromptTextClassifier"/> from the folder stored in a model file.</summary>
internal sealed class PromptTextClassifierLoader : ITextClassifierLoader
{
    public ITextClassifier Load(string folder) => new PromptTextClassifier(PromptClassifier.Load(folder));
}

/// <summary>Builds a prompt classifier for the classes the estimator found, and fine-tunes it (or not, with 0 epochs).</summary>
internal sealed class PromptTrainer(TransformerClassifierOptions settings, ClassifierKind kind, FineTuningOptions options) : ITextClassifierTrainer
{
    public ITextClassifier Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassifierTrainingContext context)
    {
        var folder = ModelLocator.Resolve(settings.ModelPath, settings.Hub, cancellationToken: context.CancellationToken);
        var prompt = new PromptOptions
        {
            Template = settings.PromptTemplate ?? (settings.SecondTextColumnName is null ? null : Training.PromptTemplate.DefaultFor(kind, pairs: true)),
            LabelWords = settings.LabelWords is null ? null : Verbalizer.Parse(settings.LabelWords, classNames),
            Shots = settings.Shots,
            Calibrate = settings.Calibrate,
            LengthNormalized = settings.LengthNormalizedLabelWords,
        };
        var classifier = PromptClassifier.FromPretrained(folder, classNames, kind, prompt, options.MaxLength, context.Seed, out var report);
        context.Log(report?.ToString() ?? $"'{folder}' has no weights: training from scratch.");
        try
        {
            FineTuner.Train(classifier, training, validation, options with { Seed = context.Seed }, context.Progress, context.CancellationToken);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }

        classifier.InferencePrecision = settings.InferencePrecision;
        return new PromptTextClassifier(classifier);
    }
}
