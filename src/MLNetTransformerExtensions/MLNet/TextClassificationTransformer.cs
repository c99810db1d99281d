using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A trained text classifier as an ML.NET transformer: adds <c>Score</c> and <c>PredictedLabel</c>
/// (and <c>Probability</c> for binary tasks) to data with a text column. Made by
/// <see cref="TextClassificationEstimator.Fit"/>, saved and loaded with <c>mlContext.Model.Save/Load</c>.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Transform"/> is lazy: nothing is scored until a cursor reads an output column, and then rows
/// are scored <see cref="BatchSize"/> at a time. <c>PredictionEngine</c> scores one row per call.
/// </para>
/// <para>
/// The transformer owns its classifier: <see cref="Dispose"/> releases it (and its native memory).
/// Calls into the classifier are serialized, so one transformer can serve several threads, one at a time.
/// </para>
/// </remarks>
public sealed class TextClassificationTransformer : ITransformer, IDisposable
{
    private readonly object _classifierLock = new();
    private bool _disposed;

    internal TextClassificationTransformer(
        IHostEnvironment env, TextClassificationColumns columns, int batchSize, ITextClassificationModel classifier, string modelFormat, string formatAssembly, TextClassificationLabels labels)
    {
        Environment = env;
        Columns = columns;
        BatchSize = batchSize;
        Classifier = classifier;
        ModelFormat = modelFormat;
        ModelFormatAssembly = formatAssembly;
        Labels = labels;
    }

    /// <summary>Whether this is a multiclass or a binary classifier.</summary>
    public TextClassificationTask Task => Columns.Task;

    /// <summary>The model format of the classifier, which names its loader in saved models (see <see cref="TextClassificationModelFormatAttribute"/>).</summary>
    public string ModelFormat { get; }

    /// <summary>The trained classifier; for example <c>Classifier.SaveTo(folder)</c> exports it on its own.</summary>
    public ITextClassificationModel Classifier { get; }

    /// <summary>
    /// The class names by class index (the order of the <c>Score</c> vector): the label's key values as text for
    /// multiclass tasks, <c>["False", "True"]</c> for binary ones.
    /// </summary>
    public IReadOnlyList<string> ClassNames => Labels.ClassNames;

    /// <summary>The label column the model was trained on (not read when scoring).</summary>
    public string LabelColumnName => Columns.Label;

    /// <summary>The text column read.</summary>
    public string TextColumnName => Columns.Text;

    /// <summary>The second text column read for text-pair tasks, or <see langword="null"/>.</summary>
    public string? SecondTextColumnName => Columns.SecondText;

    /// <summary>The score column added.</summary>
    public string ScoreColumnName => Columns.Score;

    /// <summary>The predicted label column added.</summary>
    public string PredictedLabelColumnName => Columns.PredictedLabel;

    /// <summary>The probability column added by binary classifiers, or <see langword="null"/> for multiclass ones.</summary>
    public string? ProbabilityColumnName => Columns.Probability;

    /// <summary>Rows per model call when transforming data.</summary>
    public int BatchSize { get; }

    /// <summary>
    /// The number format the classifier scores in: float32, or bfloat16 (several times faster on CPUs with bfloat16
    /// instructions, probabilities within about 10⁻²; see <see cref="Training.InferencePrecision"/>). Saved with the
    /// model. Changing it affects data views already made by <see cref="Transform"/> from their next batch; the float32
    /// weights, and what is saved of them, never change.
    /// </summary>
    /// <exception cref="NotSupportedException">Set to bfloat16 on a classifier that scores only in float32 (a custom <see cref="ITextClassificationModel"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined precision.</exception>
    public InferencePrecision InferencePrecision
    {
        get
        {
            lock (_classifierLock)
            {
                return Classifier is IInferencePrecisionSetting setting ? setting.InferencePrecision : InferencePrecision.Float32;
            }
        }

        set
        {
            if (!Enum.IsDefined(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"The inference precision must be {nameof(InferencePrecision.Float32)} or {nameof(InferencePrecision.BFloat16)}.");
            }

            lock (_classifierLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (Classifier is IInferencePrecisionSetting setting)
                {
                    setting.InferencePrecision = value;
                }
                else if (value != InferencePrecision.Float32)
                {
                    throw new NotSupportedException($"The '{ModelFormat}' classifier scores only in float32; {value} is available for the transformer classifiers of this library.");
                }
            }
        }
    }

    /// <summary>Always true: the transformer maps each row on its own, so it serves <c>PredictionEngine</c>.</summary>
    public bool IsRowToRowMapper => true;

    internal IHostEnvironment Environment { get; }

    internal TextClassificationColumns Columns { get; }

    internal TextClassificationLabels Labels { get; }

    /// <summary>The simple name of the assembly that declares <see cref="ModelFormat"/>, stored in saved models.</summary>
    internal string ModelFormatAssembly { get; }

    /// <summary>The input schema's columns followed by the output columns.</summary>
    /// <param name="inputSchema">The schema of the data to transform; it must hold the text column(s).</param>
    /// <returns>The schema of the transformed data.</returns>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new TextClassificationBinding(this, inputSchema).Output;
    }

    /// <summary>Adds the output columns to <paramref name="input"/>, lazily: rows are scored as a cursor reads them.</summary>
    /// <param name="input">Data with the text column(s); the label column is not needed.</param>
    /// <returns>A view of the input with the output columns added.</returns>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new TextClassificationDataView(new TextClassificationBinding(this, input.Schema), input);
    }

    /// <summary>A row-at-a-time mapper, as <c>PredictionEngine</c> uses.</summary>
    /// <param name="inputSchema">The schema of the rows to map.</param>
    /// <returns>The mapper.</returns>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new TextClassificationRowMapper(new TextClassificationBinding(this, inputSchema));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        TextClassificationPersistence.Save(this, ctx);
    }

    /// <summary>Releases the classifier.</summary>
    public void Dispose()
    {
        lock (_classifierLock)
        {
            if (!_disposed)
            {
                _disposed = true;
                Classifier.Dispose();
            }
        }
    }

    /// <summary>
    /// Attributes the classifier's score for a class to the tokens of each text (integrated gradients on the input word
    /// embeddings by default, or gradient × input): which words pushed the prediction, and how much.
    /// </summary>
    /// <param name="texts">The texts to explain, each computed alone (a text's attributions do not depend on the others).</param>
    /// <param name="secondTexts">The second texts of a text-pair task, one per text; null otherwise.</param>
    /// <param name="options">The method, its steps and the class to explain; null for <see cref="TokenAttributionOptions.Defaults"/> and the predicted class.</param>
    /// <returns>One attribution per text, in order.</returns>
    /// <exception cref="NotSupportedException">The classifier is not one of this library's transformer classifiers.</exception>
    /// <exception cref="ArgumentException">The options name a class that does not exist, or the second texts do not match the texts.</exception>
    /// <example>
    /// <code>
    /// var why = model.Explain(["a gripping, funny film"])[0];
    /// // why.Tokens[i] pushed the score of why.Label by why.Attributions[i]
    /// </code>
    /// </example>
    public IReadOnlyList<TokenAttribution> Explain(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts = null, TokenAttributionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (secondTexts is not null && secondTexts.Count != texts.Count)
        {
            throw new ArgumentException($"There are {secondTexts.Count} second texts for {texts.Count} texts; give one per text.", nameof(secondTexts));
        }

        options ??= new TokenAttributionOptions();
        lock (_classifierLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var classifier = (Classifier as IExplainableTextClassificationModel)?.Explainable
                ?? throw new NotSupportedException($"The '{ModelFormat}' classifier cannot attribute its scores to tokens; token attributions are available for this library's transformer classifiers.");
            return [.. texts.Select((text, i) => TokenAttributor.Explain(classifier, text, secondTexts?[i], options))];
        }
    }

    /// <summary>Runs the classifier on one batch, checking that it answered one probability row of K classes per input row.</summary>
    internal float[][] Predict(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts)
    {
        float[][] probabilities;
        lock (_classifierLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            probabilities = Classifier.PredictProbabilities(texts, secondTexts);
        }

        if (probabilities is null || probabilities.Length != texts.Count)
        {
            throw new InvalidOperationException(
                $"The '{ModelFormat}' classifier returned {probabilities?.Length ?? 0} probability rows for a batch of {texts.Count} texts.");
        }

        for (var row = 0; row < probabilities.Length; row++)
        {
            if (probabilities[row]?.Length != Labels.ClassCount)
            {
                throw new InvalidOperationException(
                    $"The '{ModelFormat}' classifier returned {probabilities[row]?.Length ?? 0} probabilities for row {row} of a batch; it has {Labels.ClassCount} classes.");
            }
        }

        return probabilities;
    }
}
