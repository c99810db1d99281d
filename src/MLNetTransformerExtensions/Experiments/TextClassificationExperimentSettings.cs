namespace MLNetTransformerExtensions.Experiments;

/// <summary>The validation metric an experiment ranks its trials by.</summary>
public enum TextClassificationMetric
{
    /// <summary>Share of rows classified correctly (ML.NET's <c>MicroAccuracy</c>). Higher is better.</summary>
    MicroAccuracy,

    /// <summary>Accuracy averaged over classes (ML.NET's <c>MacroAccuracy</c>): rare classes count as much as common ones. Higher is better.</summary>
    MacroAccuracy,

    /// <summary>F1 averaged over classes. Higher is better.</summary>
    MacroF1,

    /// <summary>Mean negative log-probability of the true class (ML.NET's <c>LogLoss</c>): rewards calibrated probabilities. Lower is better.</summary>
    LogLoss,

    /// <summary>Area under the ROC curve of the second class (in the label's sorted order); two classes only. Higher is better.</summary>
    AreaUnderRocCurve,
}

/// <summary>
/// Settings of a <see cref="TextClassificationExperiment"/>, in the manner of ML.NET AutoML's experiment settings:
/// columns, the metric, the budget, the candidates, the seed, progress and cancellation.
/// </summary>
/// <remarks>
/// <para><b>Budget.</b> Give <see cref="MaxExperimentTime"/>, <see cref="MaxTrials"/>, or both; the experiment stops at
/// whichever comes first. With neither it runs one round of the search (every candidate's defaults, then one
/// successive-halving bracket of the transformers) and stops. With a trial limit and no time limit, trials never
/// depend on the clock: the same seed gives the same trials and the same best model.</para>
/// <para><b>Validation.</b> A validation set passed to <see cref="TextClassificationExperiment.Execute"/> is used as it
/// is. Otherwise, with <see cref="NumberOfFolds"/> set, or with fewer training rows than
/// <see cref="Defaults.CrossValidationRowThreshold"/>, every trial is cross-validated; else
/// <see cref="ValidationFraction"/> of the rows is held out once. ML.NET AutoML cross-validates below about 15,000 rows;
/// we stop at 1,000, because a transformer trial costs hundreds of times a linear one and k folds multiply it by k:
/// above a thousand rows a 20 % hold-out (200+ rows, a standard error of about 3 accuracy points) ranks candidates well
/// enough, and the budget is better spent on more candidates.</para>
/// </remarks>
public sealed class TextClassificationExperimentSettings
{
    /// <summary>The label column: any type ML.NET's <c>MapValueToKey</c> accepts (text, Boolean, numbers). Classes are its distinct values, sorted.</summary>
    public string LabelColumnName = Defaults.LabelColumnName;

    /// <summary>The text column (String).</summary>
    public string TextColumnName = Defaults.TextColumnName;

    /// <summary>A second text column for text pairs, or null.</summary>
    public string? SecondTextColumnName;

    /// <summary>The key column the pipeline maps the label to (what the trainers and evaluators read).</summary>
    public string LabelKeyColumnName = Defaults.LabelKeyColumnName;

    /// <summary>The predicted class as a key; the pipeline maps it back to the label's values in <c>PredictedLabel</c>.</summary>
    public string PredictedLabelKeyColumnName = Defaults.PredictedLabelKeyColumnName;

    /// <summary>The metric trials are ranked by.</summary>
    public TextClassificationMetric OptimizingMetric = TextClassificationMetric.MicroAccuracy;

    /// <summary>
    /// Wall-time budget. When it runs out, the trial in flight is cancelled and the best finished trial is returned;
    /// no trial is started that the cost model expects to overrun it. Null: no time limit.
    /// </summary>
    public TimeSpan? MaxExperimentTime;

    /// <summary>The most trials to run (completed, failed and cancelled ones all count). Null: no limit.</summary>
    public int? MaxTrials;

    /// <summary>The candidates to search, cheap ones first; null for <see cref="ExperimentCandidates.Default"/>.</summary>
    public IReadOnlyList<ExperimentCandidate>? Candidates;

    /// <summary>Seeds the search, the data splits and every trial's training.</summary>
    public int Seed = 1;

    /// <summary>Share of the training rows held out for validation when no validation set is given and the data is not cross-validated.</summary>
    public double ValidationFraction = Defaults.ValidationFraction;

    /// <summary>Cross-validate every trial with this many folds (2 or more) when no validation set is given. Null: decided by the row count (see remarks).</summary>
    public int? NumberOfFolds;

    /// <summary>Receives every trial as it starts, completes, fails or is cancelled; called on the experiment's thread.</summary>
    public IProgress<TrialResult>? Progress;

    /// <summary>Stops the experiment: the trial in flight is cancelled, and the best finished trial is returned.</summary>
    public CancellationToken CancellationToken;

    /// <summary>The clock the budget is measured with; tests pass a fake one.</summary>
    public TimeProvider TimeProvider = TimeProvider.System;

    /// <summary>The default values.</summary>
    public static class Defaults
    {
        /// <summary>The default label column.</summary>
        public const string LabelColumnName = "Label";

        /// <summary>The default text column.</summary>
        public const string TextColumnName = "Text";

        /// <summary>The default label key column.</summary>
        public const string LabelKeyColumnName = "LabelKey";

        /// <summary>The default predicted key column.</summary>
        public const string PredictedLabelKeyColumnName = "PredictedLabelKey";

        /// <summary>The default hold-out share.</summary>
        public const double ValidationFraction = 0.2;

        /// <summary>Below this many training rows (and without a validation set), trials are cross-validated.</summary>
        public const int CrossValidationRowThreshold = 1000;

        /// <summary>Folds used when cross-validation is chosen by the row count.</summary>
        public const int NumberOfFolds = 5;
    }

    internal void Validate()
    {
        Require(LabelColumnName, nameof(LabelColumnName));
        Require(TextColumnName, nameof(TextColumnName));
        Require(LabelKeyColumnName, nameof(LabelKeyColumnName));
        Require(PredictedLabelKeyColumnName, nameof(PredictedLabelKeyColumnName));
        if (SecondTextColumnName is { } second && string.IsNullOrWhiteSpace(second))
        {
            throw new ArgumentException("SecondTextColumnName must be null (single texts) or a column name, not blank.", nameof(SecondTextColumnName));
        }

        if (!Enum.IsDefined(OptimizingMetric))
        {
            throw new ArgumentOutOfRangeException(nameof(OptimizingMetric), OptimizingMetric, "OptimizingMetric is not a defined metric.");
        }

        if (MaxExperimentTime is { } time && time <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxExperimentTime), time, "MaxExperimentTime must be positive (or null for no time limit).");
        }

        if (MaxTrials is { } trials && trials < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTrials), trials, "MaxTrials must be 1 or more (or null for no trial limit).");
        }

        if (ValidationFraction is <= 0 or >= 1 || double.IsNaN(ValidationFraction))
        {
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "ValidationFraction must be between 0 and 1 (exclusive).");
        }

        if (NumberOfFolds is { } folds && folds < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(NumberOfFolds), folds, "NumberOfFolds must be 2 or more (or null to decide by the row count).");
        }

        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }

    private static void Require(string? name, string option)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException($"{option} must name a column; it is empty.", option);
        }
    }
}
