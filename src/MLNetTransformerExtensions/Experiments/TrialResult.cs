using System.Collections;
using System.Globalization;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>Where a trial stands.</summary>
public enum TrialStatus
{
    /// <summary>Training or validating now.</summary>
    Running,

    /// <summary>Trained and validated; <see cref="TrialResult.Metric"/> is set.</summary>
    Completed,

    /// <summary>Threw; <see cref="TrialResult.Error"/> says why. The experiment went on.</summary>
    Failed,

    /// <summary>Stopped before it finished: the budget ran out, the experiment was cancelled, or it was clearly losing (see <see cref="TrialResult.Error"/>).</summary>
    Cancelled,
}

/// <summary>A trial's hyperparameters, by name (HuggingFace's and LightGBM's spelling where they have one), in the order the candidate set them.</summary>
public sealed class Hyperparameters : IReadOnlyList<KeyValuePair<string, double>>
{
    private readonly List<KeyValuePair<string, double>> _values;

    /// <summary>Creates the set from name-value pairs; names must be distinct.</summary>
    /// <param name="values">The values, in display order.</param>
    public Hyperparameters(IEnumerable<KeyValuePair<string, double>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _values = [.. values];
        var duplicate = _values.GroupBy(v => v.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"The hyperparameter '{duplicate.Key}' is given twice.", nameof(values));
        }
    }

    /// <summary>No hyperparameters: the trainer's own defaults.</summary>
    public static Hyperparameters Empty { get; } = new([]);

    /// <inheritdoc/>
    public int Count => _values.Count;

    /// <inheritdoc/>
    public KeyValuePair<string, double> this[int index] => _values[index];

    /// <summary>The value of <paramref name="name"/>.</summary>
    /// <param name="name">A hyperparameter name.</param>
    /// <returns>Its value.</returns>
    /// <exception cref="KeyNotFoundException">The set has no such hyperparameter.</exception>
    public double this[string name] => TryGetValue(name, out var value) ? value
        : throw new KeyNotFoundException($"No hyperparameter '{name}'; the set has: {string.Join(", ", _values.Select(v => v.Key))}.");

    /// <summary>Looks a value up by name.</summary>
    /// <param name="name">A hyperparameter name.</param>
    /// <param name="value">Its value, when present.</param>
    /// <returns>Whether the set has it.</returns>
    public bool TryGetValue(string name, out double value)
    {
        foreach (var pair in _values)
        {
            if (pair.Key == name)
            {
                value = pair.Value;
                return true;
            }
        }

        value = 0;
        return false;
    }

    /// <summary>The value of <paramref name="name"/>, or <paramref name="fallback"/> when absent.</summary>
    /// <param name="name">A hyperparameter name.</param>
    /// <param name="fallback">The value when the set has none.</param>
    /// <returns>The value.</returns>
    public double GetValueOrDefault(string name, double fallback) => TryGetValue(name, out var value) ? value : fallback;

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, double>> GetEnumerator() => _values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary><c>name=value</c> pairs, or <c>defaults</c> for an empty set.</summary>
    /// <returns>The text.</returns>
    public override string ToString() =>
        _values.Count == 0 ? "defaults" : string.Join(" ", _values.Select(v => $"{v.Key}={Format(v.Value)}"));

    /// <summary>Integers as integers, small or large numbers in exponent form, others with 4 significant digits.</summary>
    /// <param name="value">A value.</param>
    /// <returns>The text.</returns>
    public static string Format(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e6 ? value.ToString("0", CultureInfo.InvariantCulture)
        : Math.Abs(value) < 1e-2 ? value.ToString("0.##e0", CultureInfo.InvariantCulture)
        : value.ToString("0.####", CultureInfo.InvariantCulture);
}

/// <summary>Validation metrics of a finished trial (means over folds when cross-validated).</summary>
/// <param name="MicroAccuracy">Share of rows classified correctly.</param>
/// <param name="MacroAccuracy">Accuracy averaged over classes.</param>
/// <param name="MacroF1">F1 averaged over classes.</param>
/// <param name="LogLoss">Mean negative log-probability of the true class.</param>
/// <param name="AreaUnderRocCurve">AUC of the second class, for two classes; otherwise null.</param>
public sealed record TrialMetrics(double MicroAccuracy, double MacroAccuracy, double MacroF1, double LogLoss, double? AreaUnderRocCurve)
{
    /// <summary>The value of one metric.</summary>
    /// <param name="metric">The metric.</param>
    /// <returns>Its value.</returns>
    public double Get(TextClassificationMetric metric) => metric switch
    {
        TextClassificationMetric.MicroAccuracy => MicroAccuracy,
        TextClassificationMetric.MacroAccuracy => MacroAccuracy,
        TextClassificationMetric.MacroF1 => MacroF1,
        TextClassificationMetric.LogLoss => LogLoss,
        TextClassificationMetric.AreaUnderRocCurve => AreaUnderRocCurve
            ?? throw new InvalidOperationException("The area under the ROC curve is defined for two classes only."),
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, null),
    };

    /// <summary>Whether a smaller value of <paramref name="metric"/> is better (log-loss).</summary>
    /// <param name="metric">The metric.</param>
    /// <returns>True for log-loss.</returns>
    public static bool LowerIsBetter(TextClassificationMetric metric) => metric == TextClassificationMetric.LogLoss;
}

/// <summary>
/// One trial of an experiment, as the progress monitor receives it when it starts (<see cref="TrialStatus.Running"/>)
/// and when it ends, and as the result lists it.
/// </summary>
public sealed record TrialResult
{
    /// <summary>1 for the first trial of the experiment, then 2, 3, ...</summary>
    public required int TrialNumber { get; init; }

    /// <summary>The candidate's name, e.g. <c>SdcaMaximumEntropy</c> or <c>encoder-head builtin:all-MiniLM-L6-v2</c>.</summary>
    public required string Candidate { get; init; }

    /// <summary>The hyperparameters the trial trained with.</summary>
    public required Hyperparameters Hyperparameters { get; init; }

    /// <summary>The share of the training rows the trial trained on (successive halving starts expensive candidates on a fraction).</summary>
    public required double DataFraction { get; init; }

    /// <summary>The trial's state.</summary>
    public required TrialStatus Status { get; init; }

    /// <summary>The validation value of the optimised metric, once completed.</summary>
    public double? Metric { get; init; }

    /// <summary>Every validation metric, once completed.</summary>
    public TrialMetrics? Metrics { get; init; }

    /// <summary>Wall time from start to end (training, validation and measurement), or so far while running.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>The highest resident memory of the process seen during the trial, in bytes (sampled; 0 while running).</summary>
    public long PeakMemoryBytes { get; init; }

    /// <summary>Rows per second of the fitted pipeline while scoring the validation rows.</summary>
    public double? ScoringRowsPerSecond { get; init; }

    /// <summary>The size of the fitted pipeline as an ML.NET model file, in bytes.</summary>
    public long? ModelSizeBytes { get; init; }

    /// <summary>Why the trial failed or was cancelled; null otherwise.</summary>
    public string? Error { get; init; }

    /// <summary>The exception a failed trial threw.</summary>
    public Exception? Exception { get; init; }
}
