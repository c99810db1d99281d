using Microsoft.ML;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>Creates text classification experiments from an <see cref="MLContext"/>.</summary>
public static class TextClassificationExperimentCatalog
{
    /// <summary>
    /// An experiment that searches classic ML.NET text pipelines and transformer classifiers under one budget and
    /// returns a leaderboard and the best pipeline. (Not named <c>Auto()</c>, so it can sit beside Microsoft.ML.AutoML.)
    /// </summary>
    /// <param name="mlContext">The context; it fits the label mapping and logs.</param>
    /// <param name="settings">Columns, metric, budget, candidates, seed, progress and cancellation.</param>
    /// <returns>The experiment; call <see cref="TextClassificationExperiment.Execute"/>.</returns>
    /// <example>
    /// <code>
    /// var experiment = mlContext.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
    /// {
    ///     MaxExperimentTime = TimeSpan.FromMinutes(10),
    ///     OptimizingMetric = TextClassificationMetric.MacroF1,
    /// });
    /// var result = experiment.Execute(train, validation);
    /// mlContext.Model.Save(result.BestModel, train.Schema, "best.zip");
    /// </code>
    /// </example>
    public static TextClassificationExperiment CreateTextClassificationExperiment(this MLContext mlContext, TextClassificationExperimentSettings settings) =>
        new(mlContext, settings);
}
