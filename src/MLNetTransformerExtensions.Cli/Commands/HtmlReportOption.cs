using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>The <c>--report</c> option of <c>train</c> and <c>evaluate</c>: a <see cref="TrainingReport"/> filled from their data.</summary>
internal static class HtmlReportOption
{
    public static Option<string?> Create() => new("--report")
    {
        Description = "Also write a self-contained HTML report to this file: training curves, confusion matrix, per-class metrics, calibration, the baseline, and the most confidently wrong rows with their token attributions.",
    };

    /// <summary>
    /// Adds a saved model's evaluation on a labelled file: scored and explained by the transformer when the model has one,
    /// read from the pipeline's Score column otherwise (a classic pipeline, which has no token attributions).
    /// </summary>
    public static void AddEvaluation(TrainingReport report, string name, MLContext ml, ModelZip.Loaded loaded, TabularData data, IDataView scored)
    {
        var texts = loaded.TextColumns.Select(c => data.Read(ml, c.Column)).ToList();
        var labels = data.Read(ml, loaded.LabelColumn);
        if (loaded.Classifier is TextClassificationTransformer transformer)
        {
            report.AddEvaluation(name, transformer, texts[0], labels, texts.Count > 1 ? texts[1] : null);
            return;
        }

        AddScored(report, name, scored, ModelZip.KeyColumn(loaded.LabelColumn), loaded.ScoreColumn, loaded.ClassNames, data.Read(ml, data.Columns[0]));
    }

    /// <summary>Adds a scored view's predictions: the label key column gives the true class, the score vector the probabilities (key order).</summary>
    public static void AddScored(TrainingReport report, string name, IDataView scored, string keyColumn, string scoreColumn, IReadOnlyList<string> classNames, IReadOnlyList<string> texts)
    {
        var keys = scored.GetColumn<uint>(keyColumn).ToList();
        var scores = scored.GetColumn<VBuffer<float>>(scoreColumn).Select(v => v.DenseValues().ToArray()).ToList();
        report.AddEvaluation(name, classNames, texts, [.. keys.Select(k => (int)k - 1)], scores);
    }

    /// <summary>Records every progress event in the report, synchronously, before the console's own handler sees it.</summary>
    public sealed class Recording(TrainingReport? report, IProgress<TrainingProgress> console) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            report?.Report(value);
            console.Report(value);
        }
    }
}
