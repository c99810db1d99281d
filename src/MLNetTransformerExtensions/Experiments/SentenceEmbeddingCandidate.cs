using Microsoft.ML;
using Microsoft.ML.Trainers;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Sources;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// A sentence encoder's frozen embeddings (<c>ApplySentenceEmbedding</c>) into ML.NET's L-BFGS maximum entropy: one
/// forward pass per row and no fine-tuning, so it costs a fraction of a transformer trial and is often good enough.
/// </summary>
/// <remarks>Search space: index 0 is L1 = 0, L2 = 1 (scikit-learn's logistic regression, as SetFit's head); then L2
/// log-uniform in [1e-3, 10] with L1 = 0.</remarks>
public sealed class SentenceEmbeddingCandidate : ExperimentCandidate
{
    private const string FeaturesColumn = "SentenceEmbedding";

    // A forward pass is about a third of a training step; the candidate's rows cost one forward pass each.
    private const double AssumedFlopsPerSecond = 1e11;

    private readonly HubOptions? _hub;
    private string? _folder;
    private double _secondsPerRow = 0.01;

    /// <summary>An embedding candidate.</summary>
    /// <param name="model">A sentence encoder: a model folder, a built-in model or a hub id.</param>
    /// <param name="hub">Where hub ids are downloaded from; null reads the environment.</param>
    public SentenceEmbeddingCandidate(string model, HubOptions? hub = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        Model = model;
        _hub = hub;
    }

    /// <summary>The encoder as the user named it.</summary>
    public string Model { get; }

    /// <inheritdoc/>
    public override string Name => $"embedding+lbfgs {Model}";

    /// <summary>True: embedding every row takes a transformer's forward pass, which the cost model must plan for.</summary>
    public override bool IsExpensive => true;

    /// <inheritdoc/>
    public override double EstimatedSecondsPerRow => _secondsPerRow;

    /// <summary>Resolves the model and estimates a row's cost from its size and the texts' lengths.</summary>
    /// <inheritdoc/>
    public override void Prepare(ExperimentData data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        _folder = ModelLocator.Resolve(Model, _hub, cancellationToken: cancellationToken);
        var config = TransformerConfig.FromFolder(_folder);
        var meanWords = data.SampleTexts.Count == 0 ? 16 : data.SampleTexts.Average(t => t.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length * 1.3 + 2);
        _secondsPerRow = 2 * 12.0 * config.NumLayers * config.HiddenSize * config.HiddenSize * meanWords / AssumedFlopsPerSecond;
    }

    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index)
    {
        ArgumentNullException.ThrowIfNull(random);
        return new Hyperparameters([new("l2_regularization", index == 0 ? 1 : SearchSpace.LogUniform(random, 1e-3, 10))]);
    }

    /// <inheritdoc/>
    public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(setup);
        if (setup.SecondTextColumnName is not null)
        {
            throw new NotSupportedException($"The {Name} candidate embeds single texts; it cannot read the second text column '{setup.SecondTextColumnName}'.");
        }

        return mlContext.Transforms.Text.ApplySentenceEmbedding(new SentenceEmbeddingOptions
        {
            InputColumnName = setup.TextColumnName,
            OutputColumnName = FeaturesColumn,
            ModelPath = _folder ?? Model,
            Hub = _hub,
        })
            // L-BFGS reads its data many times: embed once, not once per pass.
            .AppendCacheCheckpoint(mlContext)
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = setup.LabelKeyColumnName,
                FeatureColumnName = FeaturesColumn,
                L1Regularization = 0,
                L2Regularization = (float)setup.Hyperparameters.GetValueOrDefault("l2_regularization", 1),
                NumberOfThreads = 1,
            }))
            .Append(mlContext.Transforms.CopyColumns(setup.PredictedLabelKeyColumnName, "PredictedLabel"));
    }
}
