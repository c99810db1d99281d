using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Experiments;
/// <summary>What an experiment found.</summary>
public sealed class TextClassificationExperimentResult
{
    internal TextClassificationExperimentResult(IReadOnlyList<TrialResult> trials, TrialResult bestTrial, ITransformer bestModel,
        IReadOnlyList<string> classNames, TextClassificationMetric metric, TimeSpan duration, bool stopped)
    {
        Trials = trials;
        BestTrial = bestTrial;
        BestModel = bestModel;
        ClassNames = classNames;
        OptimizingMetric = metric;
        Duration = duration;
        StoppedByBudgetOrCancellation = stopped;
    }

    /// <summary>Every trial in the order it ran (completed, failed and cancelled).</summary>
    public IReadOnlyList<TrialResult> Trials { get; }

    /// <summary>The completed trial with the best validation metric (the earliest on ties).</summary>
    public TrialResult BestTrial { get; }

    /// <summary>
    /// The best trial's fitted pipeline (label → key, trainer, predicted key → label); with cross-validation, refitted
    /// on all training rows when the budget allowed. Save it with <c>mlContext.Model.Save</c>.
    /// </summary>
    public ITransformer BestModel { get; }

    /// <summary>The classes, in key order (the order of <c>Score</c>'s slots).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The metric trials were ranked by.</summary>
    public TextClassificationMetric OptimizingMetric { get; }

    /// <summary>Wall time of the whole experiment.</summary>
    public TimeSpan Duration { get; }

    /// <summary>Whether the time budget or the cancellation token ended the search (rather than the trial limit or the end of the plan).</summary>
    public bool StoppedByBudgetOrCancellation { get; }

    /// <summary>Trials that completed, best first.</summary>
    public IEnumerable<TrialResult> Leaderboard => Trials.Where(t => t.Status == TrialStatus.Completed)
        .OrderBy(t => TrialMetrics.LowerIsBetter(OptimizingMetric) ? t.Metric : -t.Metric).ThenBy(t => t.TrialNumber);
}
