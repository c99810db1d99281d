using Microsoft.ML;
using Microsoft.ML.Trainers.LightGbm;

namespace MLNetTransformerExtensions.Experiments;

/// <summary><c>FeaturizeText</c> + LightGBM's gradient-boosted trees (Microsoft.ML.LightGbm), multiclass.</summary>
public sealed class LightGbmCandidate : ClassicTextCandidate
{
    /// <inheritdoc/>
    public override string Name => "LightGbm";

    /// <inheritdoc/>
    public override double EstimatedSecondsPerRow => 5e-3;

    /// <summary>
    /// Index 0: ML.NET's defaults (100 iterations, leaves and learning rate chosen from the data); then num_leaves
    /// log-uniform in [4, 128], learning_rate in [0.02, 0.3], num_iterations of 50, 100 or 200, min_data_in_leaf of 1, 5, 20 or 50.
    /// </summary>
    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index) => index == 0 ? Hyperparameters.Empty : new Hyperparameters(
    [
        new("num_leaves", Math.Round(SearchSpace.LogUniform(random, 4, 128))),
        new("learning_rate", SearchSpace.LogUniform(random, 0.02, 0.3)),
        new("num_iterations", SearchSpace.Choice(random, 50, 100, 200)),
        new("min_data_in_leaf", SearchSpace.Choice(random, 1, 5, 20, 50)),
    ]);

    /// <inheritdoc/>
    protected override IEstimator<ITransformer> CreateLearner(MLContext mlContext, string labelKeyColumnName, string featuresColumnName, Hyperparameters hyperparameters, int seed)
    {
        var options = new LightGbmMulticlassTrainer.Options
        {
            LabelColumnName = labelKeyColumnName,
            FeatureColumnName = featuresColumnName,
            NumberOfThreads = 1,
            Seed = seed,
            Silent = true,
            NumberOfLeaves = hyperparameters.TryGetValue("num_leaves", out var leaves) ? (int)leaves : null,
            LearningRate = hyperparameters.TryGetValue("learning_rate", out var rate) ? rate : null,
            MinimumExampleCountPerLeaf = hyperparameters.TryGetValue("min_data_in_leaf", out var min) ? (int)min : null,
        };
        if (hyperparameters.TryGetValue("num_iterations", out var iterations))
        {
            options.NumberOfIterations = (int)iterations;
        }

        return mlContext.MulticlassClassification.Trainers.LightGbm(options);
    }
}
