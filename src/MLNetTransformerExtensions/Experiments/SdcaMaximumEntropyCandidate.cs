using Microsoft.ML;
using Microsoft.ML.Trainers;

namespace MLNetTransformerExtensions.Experiments;

/// <summary><c>FeaturizeText</c> + <c>SdcaMaximumEntropy</c>: ML.NET's usual text baseline, seconds to train.</summary>
public sealed class SdcaMaximumEntropyCandidate : ClassicTextCandidate
{
    /// <inheritdoc/>
    public override string Name => "SdcaMaximumEntropy";

    /// <summary>Index 0: ML.NET's defaults (regularisation chosen from the data); then L1 and L2 log-uniform in [1e-5, 1] (L1 up to 1e-1).</summary>
    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index) => index == 0 ? Hyperparameters.Empty : new Hyperparameters(
    [
        new("l2_regularization", SearchSpace.LogUniform(random, 1e-5, 1)),
        new("l1_regularization", SearchSpace.LogUniform(random, 1e-5, 1e-1)),
    ]);

    /// <inheritdoc/>
    protected override IEstimator<ITransformer> CreateLearner(MLContext mlContext, string labelKeyColumnName, string featuresColumnName, Hyperparameters hyperparameters, int seed) =>
        mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = labelKeyColumnName,
            FeatureColumnName = featuresColumnName,
            L2Regularization = Optional(hyperparameters, "l2_regularization"),
            L1Regularization = Optional(hyperparameters, "l1_regularization"),
            NumberOfThreads = 1,
        });
}
