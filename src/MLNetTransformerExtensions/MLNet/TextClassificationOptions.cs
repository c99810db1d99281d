using Microsoft.ML;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Which ML.NET task a text classifier serves, which decides its label and output columns.</summary>
public enum TextClassificationTask
{
    /// <summary>
    /// Label: <c>Key&lt;UInt32, K&gt;</c> (from <c>MapValueToKey</c>), K ≥ 2. Outputs: <c>Score</c>
    /// (<c>Vector&lt;Single, K&gt;</c> of class probabilities) and <c>PredictedLabel</c> (the label's key type).
    /// </summary>
    Multiclass,

    /// <summary>
    /// Label: <see cref="bool"/>. Outputs: <c>Score</c> (<see cref="float"/>, the log-odds of <see langword="true"/>),
    /// <c>Probability</c> (<see cref="float"/>) and <c>PredictedLabel</c> (<see cref="bool"/>).
    /// </summary>
    Binary,
}

/// <summary>
/// Column names and scoring settings shared by every text classification trainer. Trainers derive their
/// own options from this class and add their training settings.
/// </summary>
public class TextClassificationOptions
{
    /// <summary>The name of the label column: a key (multiclass) or a <see cref="bool"/> (binary).</summary>
    public string LabelColumnName = Defaults.LabelColumnName;

    /// <summary>The name of the text column (<see cref="string"/>). Missing or empty texts are classified as an empty string.</summary>
    public string TextColumnName = Defaults.TextColumnName;

    /// <summary>The name of the second text column for text-pair tasks (such as entailment), or <see langword="null"/> for single texts.</summary>
    public string? SecondTextColumnName;

    /// <summary>The name of the score column the transformer adds.</summary>
    public string ScoreColumnName = Defaults.ScoreColumnName;

    /// <summary>The name of the predicted label column the transformer adds.</summary>
    public string PredictedLabelColumnName = Defaults.PredictedLabelColumnName;

    /// <summary>The name of the probability column the transformer adds for binary tasks (ignored for multiclass ones).</summary>
    public string ProbabilityColumnName = Defaults.ProbabilityColumnName;

    /// <summary>
    /// Rows per model call when scoring (<c>Transform</c> reads this many rows ahead, then runs one batch).
    /// Trainers may also use it as their training batch size.
    /// </summary>
    public int BatchSize = Defaults.BatchSize;

    /// <summary>
    /// Rows to validate on while training, with the same columns (after the same transforms) as the
    /// training data, or <see langword="null"/>.
    /// </summary>
    public IDataView? ValidationSet;

    /// <summary>Receives the trainer's progress reports, or <see langword="null"/>. The end of each epoch also goes to <c>MLContext.Log</c>.</summary>
    public IProgress<TrainingProgress>? Progress;

    /// <summary>Stops training when cancelled: <c>Fit</c> then throws <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken CancellationToken;

    /// <summary>The default values of the options.</summary>
    public static class Defaults
    {
        /// <summary>The default label column name.</summary>
        public const string LabelColumnName = "Label";

        /// <summary>The default text column name.</summary>
        public const string TextColumnName = "Text";

        /// <summary>The default score column name.</summary>
        public const string ScoreColumnName = "Score";

        /// <summary>The default predicted label column name.</summary>
        public const string PredictedLabelColumnName = "PredictedLabel";

        /// <summary>The default probability column name.</summary>
        public const string ProbabilityColumnName = "Probability";

        /// <summary>The default number of rows per model call when scoring.</summary>
        public const int BatchSize = 32;
    }
}

/// <summary>The column names a text classifier reads and writes, checked and fixed at construction.</summary>
internal sealed record TextClassificationColumns(
    TextClassificationTask Task, string Text, string? SecondText, string Label, string Score, string PredictedLabel, string? Probability)
{
    public static TextClassificationColumns From(TextClassificationTask task, TextClassificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (task is not (TextClassificationTask.Multiclass or TextClassificationTask.Binary))
        {
            throw new ArgumentOutOfRangeException(nameof(task), task, "The task must be Multiclass or Binary.");
        }

        Require(options.TextColumnName, nameof(options.TextColumnName));
        Require(options.LabelColumnName, nameof(options.LabelColumnName));
        Require(options.ScoreColumnName, nameof(options.ScoreColumnName));
        Require(options.PredictedLabelColumnName, nameof(options.PredictedLabelColumnName));
        if (options.SecondTextColumnName is { } second && string.IsNullOrWhiteSpace(second))
        {
            throw new ArgumentException("SecondTextColumnName must be null (single texts) or a column name, not blank.", nameof(options));
        }

        var binary = task == TextClassificationTask.Binary;
        if (binary)
        {
            Require(options.ProbabilityColumnName, nameof(options.ProbabilityColumnName));
        }

        var outputs = binary
            ? new[] { options.ScoreColumnName, options.ProbabilityColumnName, options.PredictedLabelColumnName }
            : new[] { options.ScoreColumnName, options.PredictedLabelColumnName };
        if (outputs.Distinct(StringComparer.Ordinal).Count() != outputs.Length)
        {
            throw new ArgumentException($"The output column names must differ; got {string.Join(", ", outputs.Select(o => $"'{o}'"))}.", nameof(options));
        }

        return new TextClassificationColumns(task, options.TextColumnName, options.SecondTextColumnName, options.LabelColumnName,
            options.ScoreColumnName, options.PredictedLabelColumnName, binary ? options.ProbabilityColumnName : null);
    }

    private static void Require(string? name, string option)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException($"{option} must name a column; it is empty.", "options");
        }
    }
}
