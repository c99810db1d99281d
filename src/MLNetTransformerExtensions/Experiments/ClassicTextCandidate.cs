using Microsoft.ML;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// ML.NET's classic text pipeline: <c>FeaturizeText</c> (word 1–2-grams and character 3-grams, L2-normalised) into a
/// multiclass learner. Derive from it to add another classic learner: build the learner, and nothing else.
/// </summary>
/// <remarks>Learners run on one thread: ML.NET's parallel learners sum in a thread-dependent order, and the experiment promises the same model for the same seed.</remarks>
public abstract class ClassicTextCandidate : ExperimentCandidate
{
    private const string FeaturesColumn = "Features";

    /// <inheritdoc/>
    public sealed override bool IsExpensive => false;

    /// <inheritdoc/>
    public override double EstimatedSecondsPerRow => 2e-3;

    /// <inheritdoc/>
    public sealed override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(setup);
        var features = setup.SecondTextColumnName is null
            ? mlContext.Transforms.Text.FeaturizeText(FeaturesColumn, setup.TextColumnName)
            : mlContext.Transforms.Text.FeaturizeText(FeaturesColumn, new Microsoft.ML.Transforms.Text.TextFeaturizingEstimator.Options(),
                setup.TextColumnName, setup.SecondTextColumnName);
        return features
            .Append(CreateLearner(mlContext, setup.LabelKeyColumnName, FeaturesColumn, setup.Hyperparameters, setup.Seed))
            .Append(mlContext.Transforms.CopyColumns(setup.PredictedLabelKeyColumnName, "PredictedLabel"));
    }

    /// <summary>The learner: reads the keyed label and the feature vector, writes <c>Score</c> and <c>PredictedLabel</c>.</summary>
    /// <param name="mlContext">The trial's context.</param>
    /// <param name="labelKeyColumnName">The keyed label column.</param>
    /// <param name="featuresColumnName">The feature vector column.</param>
    /// <param name="hyperparameters">The trial's hyperparameters (empty: the learner's defaults).</param>
    /// <param name="seed">The trial's seed.</param>
    /// <returns>The learner.</returns>
    protected abstract IEstimator<ITransformer> CreateLearner(MLContext mlContext, string labelKeyColumnName, string featuresColumnName, Hyperparameters hyperparameters, int seed);

    /// <summary>Null when absent, so an empty set keeps ML.NET's own (often data-dependent) defaults.</summary>
    /// <param name="hyperparameters">The set.</param>
    /// <param name="name">The name.</param>
    /// <returns>The value or null.</returns>
    protected static float? Optional(Hyperparameters hyperparameters, string name) =>
        hyperparameters.TryGetValue(name, out var value) ? (float)value : null;
}
