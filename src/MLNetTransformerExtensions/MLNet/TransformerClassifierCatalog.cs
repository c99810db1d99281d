using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// The transformer trainers in ML.NET's catalogs: <c>mlContext.MulticlassClassification.Trainers.EncoderClassifier(...)</c>,
/// <c>...DecoderClassifier(...)</c>, <c>...EncoderDecoderClassifier(...)</c>, and the same on <c>BinaryClassification.Trainers</c>.
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

    /// <summary>
    /// Fine-tunes an encoder-decoder: BART with its classification head (the decoder's state at the last end-of-sequence
    /// token), or with <see cref="ClassificationStrategy.Prompt"/> BART's LM head or T5 scoring each class's target text
    /// text-to-text (<c>sst2 sentence: {text}</c> → <c>positive</c>).
    /// </summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="labelColumnName">The label column: a key type, as <c>MapValueToKey</c> makes.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace BART or T5 folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column for sentence pairs, or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderDecoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.EncoderDecoderClassifier(Fill(new EncoderDecoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes an encoder-decoder with every option.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="options">Columns, model, strategy and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderDecoderClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, EncoderDecoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Multiclass, options, ClassifierKind.EncoderDecoder);

    /// <summary>Fine-tunes an encoder-decoder (BART head, or BART/T5 text-to-text with the prompt strategy) for a Boolean label.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="labelColumnName">The Boolean label column.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">A HuggingFace BART or T5 folder or hub id.</param>
    /// <param name="secondTextColumnName">A second text column for sentence pairs, or null.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    /// <param name="batchSize">Sequences per batch.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="maximumLength">Longest input in tokens.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderDecoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = "", string? secondTextColumnName = null, int numberOfEpochs = TransformerClassifierOptions.FineTuningDefaults.Epochs,
        int batchSize = TextClassificationOptions.Defaults.BatchSize, double learningRate = TransformerClassifierOptions.FineTuningDefaults.LearningRate,
        int? maximumLength = TransformerClassifierOptions.FineTuningDefaults.MaxLength) =>
        catalog.EncoderDecoderClassifier(Fill(new EncoderDecoderClassifierOptions(), labelColumnName, textColumnName, modelPath, secondTextColumnName, numberOfEpochs, batchSize, learningRate, maximumLength));

    /// <summary>Fine-tunes an encoder-decoder for a Boolean label, with every option.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="options">Columns, model, strategy and fine-tuning options.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator EncoderDecoderClassifier(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, EncoderDecoderClassifierOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Binary, options, ClassifierKind.EncoderDecoder);

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

            return new TextClassificationEstimator(env, task, options, new PromptClassificationTrainer(options, kind, fineTuning), PromptClassificationModel.Format);
        }

        return new TextClassificationEstimator(env, task, options,
            new HeadClassificationTrainer(options.ModelPath, options.Hub, kind, fineTuning, options.InferencePrecision), HeadClassificationModel.Format);
    }
}
