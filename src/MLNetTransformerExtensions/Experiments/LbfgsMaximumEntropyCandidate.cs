using Microsoft.ML;
using Microsoft.ML.Trainers;

namespace MLNetTransformerExtensions.Experiments;

/// <summary><c>FeaturizeText</c> + <c>LbfgsMaximumEntropy</c>: multinomial logistic regression by L-BFGS.</summary>
public sealed class LbfgsMaximumEntropyCandidate : ClassicTextCandidate
{
    /// <inheritdoc/>
    public override string Name => "LbfgsMaximumEntropy";

    /// <summary>Index 0: ML.NET's defaults (L1 = L2 = 1); then L1 and L2 log-uniform in [1e-4, 10].</summary>
    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index) => index == 0 ? Hyperparameters.Empty : new Hyperparameters(
    [
        new("l1_regularization", SearchSpace.LogUniform(random, 1e-4, 10)),
        new("l2_regularization", SearchSpace.LogUniform(random, 1e-4, 10)),
    ]);

    /// <inheritdoc/>
    protected override IEstimator<ITransformer> CreateLearner(MLContext mlContext, string labelKeyColumnName, string featuresColumnName, Hyperparameters hyperparameters, int seed)
    {
        var options = new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = labelKeyColumnName,
            FeatureColumnName = featuresColumnName,
            NumberOfThreads = 1,
        };
        if (Optional(hyperparameters, "l1_regularization") is { } l1)
        {
            options.L1Regularization = l1;
        }

        if (Optional(hyperparameters, "l2_regularization") is { } l2)
        {
            options.L2Regularization = l2;
        }

        return mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(options);
    }
}
