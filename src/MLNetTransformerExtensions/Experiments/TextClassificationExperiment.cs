using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Experiments;
/// <summary>
/// Searches text classification pipelines (ML.NET's classic ones and transformers) for the best validation metric
/// within a time or trial budget. See <see cref="TextClassificationExperimentSettings"/> for the settings and
/// <see cref="SearchStrategy"/>'s remarks (in the README) for the strategy.
/// </summary>
/// <remarks>
/// <para><b>The pipeline.</b> Every trial fits <c>MapValueToKey(label)</c> (fitted once on all training rows, classes in
/// sorted order) → the candidate's trainer → <c>MapKeyToValue(PredictedLabel)</c>. Output columns: <c>Score</c> (class
/// probabilities in key order), the predicted key, and <c>PredictedLabel</c> in the label's own type. The best one is an
/// ordinary ML.NET model: <c>mlContext.Model.Save</c> writes it and <c>Load</c> reads it.</para>
/// <para><b>The budget is kept.</b> When <see cref="TextClassificationExperimentSettings.MaxExperimentTime"/> runs out or
/// the token is cancelled, the trial in flight is cancelled (transformer trainers check the token every step; ML.NET's
/// own trainers poll their context) and the best finished trial is returned. A trial the cost model expects to overrun
/// the time left is not started.</para>
/// <para><b>Failures are contained.</b> A trial that throws is recorded as <see cref="TrialStatus.Failed"/> with its
/// error, and the search goes on. Between trials, every model but the best is disposed and native memory returned.</para>
/// </remarks>
public sealed partial class TextClassificationExperiment
{
    /// <summary>Above this many points below the best trial on the same data share after an epoch, a transformer trial is stopped as clearly losing.</summary>
    public const double LosingMargin = 0.1;

    private const int SampleRows = 2000;

    private readonly MLContext _mlContext;
    private readonly TextClassificationExperimentSettings _settings;

    /// <summary>Creates an experiment; prefer <see cref="TextClassificationExperimentCatalog.CreateTextClassificationExperiment"/>.</summary>
    /// <param name="mlContext">The context.</param>
    /// <param name="settings">The settings.</param>
    public TextClassificationExperiment(MLContext mlContext, TextClassificationExperimentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(settings);
        _mlContext = mlContext;
        _settings = settings;
    }

    /// <summary>Runs the experiment.</summary>
    /// <param name="trainData">Training rows with the label and text column(s).</param>
    /// <param name="validationData">Validation rows with the same columns, or null to hold out or cross-validate (see the settings' remarks).</param>
    /// <returns>Every trial, the best one, and its fitted pipeline.</returns>
    /// <exception cref="ArgumentException">A setting, a column, or a candidate is unusable; nothing was trained.</exception>
    /// <exception cref="InvalidOperationException">No trial completed (the message gives the first errors).</exception>
    /// <exception cref="OperationCanceledException">The experiment was cancelled before any trial completed.</exception>
    public TextClassificationExperimentResult Execute(IDataView trainData, IDataView? validationData = null)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var s = _settings;
        s.Validate();
        var candidates = s.Candidates ?? ExperimentCandidates.Default();
        CheckCandidates(candidates);
        CheckColumns(trainData.Schema, "training data");
        if (validationData is not null)
        {
            CheckColumns(validationData.Schema, "validation data");
        }

        var time = s.TimeProvider;
        var started = time.GetTimestamp();
        using var budget = s.MaxExperimentTime is { } limit ? new CancellationTokenSource(limit, time) : new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token, s.CancellationToken);

        var keyMap = _mlContext.Transforms.Conversion.MapValueToKey(s.LabelKeyColumnName, s.LabelColumnName,
            keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(trainData);
        var classNames = ClassNames(keyMap.GetOutputSchema(trainData.Schema)[s.LabelKeyColumnName]);
        if (classNames.Count < 2)
        {
            throw new ArgumentException($"The label column '{s.LabelColumnName}' has {(classNames.Count == 0 ? "no values" : $"a single class '{classNames[0]}'")}; a classifier needs at least two classes.", nameof(trainData));
        }

        if (s.OptimizingMetric == TextClassificationMetric.AreaUnderRocCurve && classNames.Count != 2)
        {
            throw new ArgumentException($"The area under the ROC curve needs two classes; the label column '{s.LabelColumnName}' has {classNames.Count}. Optimise another metric.", nameof(trainData));
        }

        var keyed = _mlContext.Data.Cache(keyMap.Transform(trainData));
        var splits = Splits(keyed, validationData, keyMap, out var crossValidated);
        var state = new RunState(this, candidates, keyMap, keyed, splits, crossValidated, classNames, stop, budget, started, Sample(trainData, classNames));
        state.Run();
        return state.Finish();
    }

    private static void CheckCandidates(IReadOnlyList<ExperimentCandidate> candidates)
    {
        if (candidates.Count == 0)
        {
            throw new ArgumentException("The experiment has no candidates to try.", nameof(candidates));
        }

        var duplicate = candidates.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Two candidates are named '{duplicate.Key}'; give each candidate once.", nameof(candidates));
        }
    }

    private void CheckColumns(DataViewSchema schema, string what)
    {
        void Require(string name, string option, bool text)
        {
            var column = schema.GetColumnOrNull(name)
                ?? throw new ArgumentException($"The {what} has no column '{name}' (the {option}); its columns are: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
            if (text && column.Type is not TextDataViewType)
            {
                throw new ArgumentException($"The {what}'s column '{name}' (the {option}) is {column.Type}; it must be text (String).");
            }
        }

        Require(_settings.LabelColumnName, "label column", text: false);
        Require(_settings.TextColumnName, "text column", text: true);
        if (_settings.SecondTextColumnName is { } second)
        {
            Require(second, "second text column", text: true);
        }
    }

    private static List<string> ClassNames(DataViewSchema.Column key)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        key.GetKeyValues(ref names);
        return [.. names.DenseValues().Select(v => v.ToString())];
    }

    /// <summary>The (train, validation) pairs every trial is fitted and scored on, label already keyed.</summary>
    private List<(IDataView Train, IDataView Validation)> Splits(IDataView keyed, IDataView? validation, ITransformer keyMap, out bool crossValidated)
    {
        crossValidated = false;
        if (validation is not null)
        {
            return [(keyed, _mlContext.Data.Cache(keyMap.Transform(validation)))];
        }

        var rows = Count(keyed);
        var folds = _settings.NumberOfFolds
            ?? (rows < TextClassificationExperimentSettings.Defaults.CrossValidationRowThreshold ? TextClassificationExperimentSettings.Defaults.NumberOfFolds : (int?)null);
        if (folds is { } k)
        {
            crossValidated = true;
            return [.. _mlContext.Data.CrossValidationSplit(keyed, k, seed: _settings.Seed).Select(f => (f.TrainSet, f.TestSet))];
        }

        var split = _mlContext.Data.TrainTestSplit(keyed, _settings.ValidationFraction, seed: _settings.Seed);
        return [(split.TrainSet, split.TestSet)];
    }

    private ExperimentData Sample(IDataView train, IReadOnlyList<string> classNames)
    {
        var s = _settings;
        var texts = new List<string>();
        var seconds = s.SecondTextColumnName is null ? null : new List<string>();
        var columns = new List<DataViewSchema.Column> { train.Schema[s.TextColumnName] };
        if (s.SecondTextColumnName is { } secondName)
        {
            columns.Add(train.Schema[secondName]);
        }

        long rows = 0;
        using (var cursor = train.GetRowCursor(columns))
        {
            var first = cursor.GetGetter<ReadOnlyMemory<char>>(columns[0]);
            var second = seconds is null ? null : cursor.GetGetter<ReadOnlyMemory<char>>(columns[1]);
            ReadOnlyMemory<char> value = default;
            while (cursor.MoveNext())
            {
                rows++;
                if (texts.Count < SampleRows)
                {
                    first(ref value);
                    texts.Add(value.ToString());
                    if (second is not null)
                    {
                        second(ref value);
                        seconds!.Add(value.ToString());
                    }
                }
            }
        }

        return new ExperimentData(rows, classNames, texts, seconds);
    }

    internal static long Count(IDataView data)
    {
        if (data.GetRowCount() is { } known)
        {
            return known;
        }

        long rows = 0;
        using var cursor = data.GetRowCursor([]);
        while (cursor.MoveNext())
        {
            rows++;
        }

        return rows;
    }

    /// <summary>Disposes the parts of a fitted pipeline that hold native memory (transformer classifiers).</summary>
    internal static void DisposeModel(ITransformer? model)
    {
        if (model is IEnumerable<ITransformer> chain)
        {
            foreach (var part in chain)
            {
                DisposeModel(part);
            }
        }
        else if (model is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }
}
