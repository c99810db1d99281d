using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>Validation metrics of a scored view, by ML.NET's multiclass evaluator (plus macro-F1 and, for two classes, AUC).</summary>
internal static class ExperimentMetrics
{
    public static (TrialMetrics Metrics, long Rows) Evaluate(MLContext mlContext, IDataView scored, string labelKey, string predictedKey, int classCount)
    {
        var metrics = mlContext.MulticlassClassification.Evaluate(scored, labelColumnName: labelKey, scoreColumnName: "Score", predictedLabelColumnName: predictedKey);
        var precision = metrics.ConfusionMatrix.PerClassPrecision;
        var recall = metrics.ConfusionMatrix.PerClassRecall;
        var macroF1 = precision.Zip(recall, (p, r) => p + r == 0 ? 0 : 2 * p * r / (p + r)).Average();
        var rows = (long)metrics.ConfusionMatrix.Counts.Sum(r => r.Sum());
        var auc = classCount == 2 ? AreaUnderRocCurve(scored, labelKey) : (double?)null;
        return (new TrialMetrics(metrics.MicroAccuracy, metrics.MacroAccuracy, macroF1, metrics.LogLoss, auc), rows);
    }

    public static TrialMetrics Mean(IReadOnlyList<TrialMetrics> folds) => new(
        folds.Average(m => m.MicroAccuracy),
        folds.Average(m => m.MacroAccuracy),
        folds.Average(m => m.MacroF1),
        folds.Average(m => m.LogLoss),
        folds.All(m => m.AreaUnderRocCurve.HasValue) ? folds.Average(m => m.AreaUnderRocCurve!.Value) : null);

    /// <summary>
    /// AUC of the second class from its probability in <c>Score</c>: the share of (positive, negative) pairs ranked the
    /// right way, ties counting half (the Mann–Whitney statistic). Computed here because the pipeline is multiclass
    /// (a key label), and ML.NET's binary evaluator needs a Boolean label and a Probability column.
    /// </summary>
    public static double AreaUnderRocCurve(IDataView scored, string labelKey)
    {
        var label = scored.Schema[labelKey];
        var score = scored.Schema["Score"];
        var rows = new List<(float Probability, bool Positive)>();
        using (var cursor = scored.GetRowCursor([label, score]))
        {
            var labelGetter = cursor.GetGetter<uint>(label);
            var scoreGetter = cursor.GetGetter<VBuffer<float>>(score);
            uint key = 0;
            VBuffer<float> scores = default;
            while (cursor.MoveNext())
            {
                labelGetter(ref key);
                if (key == 0)
                {
                    continue; // a missing label, which the multiclass evaluator skips too
                }

                scoreGetter(ref scores);
                rows.Add((scores.GetItemOrDefault(1), key == 2));
            }
        }

        var positives = rows.Count(r => r.Positive);
        var negatives = rows.Count - positives;
        if (positives == 0 || negatives == 0)
        {
            return double.NaN;
        }

        // Rank-sum with average ranks over ties.
        var sorted = rows.OrderBy(r => r.Probability).ToList();
        double positiveRankSum = 0;
        for (var i = 0; i < sorted.Count;)
        {
            var j = i;
            while (j < sorted.Count && sorted[j].Probability == sorted[i].Probability)
            {
                j++;
            }

            var averageRank = (i + 1 + j) / 2.0;
            positiveRankSum += averageRank * sorted.Skip(i).Take(j - i).Count(r => r.Positive);
            i = j;
        }

        return (positiveRankSum - (positives * (positives + 1) / 2.0)) / ((double)positives * negatives);
    }
}
