using Microsoft.ML;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Sources;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// SetFit through its catalog trainer: contrastive fine-tuning of a sentence encoder on pairs, then a logistic-regression
/// head. The candidate of choice with few labels: its cost grows with the pairs, not the rows' count squared, and it
/// learns from a handful of examples per class.
/// </summary>
/// <remarks>
/// <para>Search space (index 0 is SetFit's defaults): pair rounds 20 (then 5, 10 or 20), learning rate 2e-5 (then
/// log-uniform in [1e-5, 6e-5]), one epoch. With many rows the pairs are capped at <see cref="MaximumPairs"/>, where more
/// rounds stop paying for themselves and the encoder-head candidate takes over.</para>
/// </remarks>
public sealed class SetFitCandidate : ExperimentCandidate
{
    /// <summary>The most pairs a trial trains on.</summary>
    public const int MaximumPairs = 4000;

    private const double AssumedFlopsPerSecond = 1e11;

    private readonly HubOptions? _hub;
    private string? _folder;
    private long _rows = 1;
    private double _secondsPerText = 0.02;

    /// <summary>A SetFit candidate.</summary>
    /// <param name="model">A sentence encoder: a model folder, a built-in model or a hub id.</param>
    /// <param name="hub">Where hub ids are downloaded from; null reads the environment.</param>
    public SetFitCandidate(string model, HubOptions? hub = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        Model = model;
        _hub = hub;
    }

    /// <summary>The encoder as the user named it.</summary>
    public string Model { get; }

    /// <inheritdoc/>
    public override string Name => $"setfit {Model}";

    /// <inheritdoc/>
    public override bool IsExpensive => true;

    /// <summary>Per training row: its share of the pairs (two texts each, forward and backward) and its own embedding for the head.</summary>
    public override double EstimatedSecondsPerRow => _secondsPerText * ((2.0 * Math.Min(MaximumPairs, 40.0 * _rows) / _rows) + (1.0 / 3));

    /// <summary>Resolves the model and estimates the cost of a text from its size and the texts' lengths.</summary>
    /// <inheritdoc/>
    public override void Prepare(ExperimentData data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        _folder = ModelLocator.Resolve(Model, _hub, cancellationToken: cancellationToken);
        var config = TransformerConfig.FromFolder(_folder);
        _rows = Math.Max(1, data.RowCount);
        var meanWords = data.SampleTexts.Count == 0 ? 16 : data.SampleTexts.Average(t => t.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length * 1.3 + 2);
        _secondsPerText = 6 * 12.0 * config.NumLayers * config.HiddenSize * config.HiddenSize * meanWords / AssumedFlopsPerSecond;
    }

    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index)
    {
        ArgumentNullException.ThrowIfNull(random);
        return new Hyperparameters(
        [
            new("iterations", index == 0 ? SetFitOptions.Defaults.NumberOfIterations : SearchSpace.Choice(random, 5, 10, 20)),
            new("learning_rate", index == 0 ? SetFitOptions.Defaults.LearningRate : SearchSpace.LogUniform(random, 1e-5, 6e-5)),
        ]);
    }

    /// <inheritdoc/>
    public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(setup);
        if (setup.SecondTextColumnName is not null)
        {
            throw new NotSupportedException($"The {Name} candidate classifies single texts; it cannot read the second text column '{setup.SecondTextColumnName}'.");
        }

        var h = setup.Hyperparameters;
        return mlContext.MulticlassClassification.Trainers.SetFit(new SetFitOptions
        {
            LabelColumnName = setup.LabelKeyColumnName,
            TextColumnName = setup.TextColumnName,
            PredictedLabelColumnName = setup.PredictedLabelKeyColumnName,
            ModelPath = _folder ?? Model,
            Hub = _hub,
            NumberOfIterations = (int)h.GetValueOrDefault("iterations", SetFitOptions.Defaults.NumberOfIterations),
            NumberOfPairs = 2L * h.GetValueOrDefault("iterations", SetFitOptions.Defaults.NumberOfIterations) * _rows > MaximumPairs ? MaximumPairs : null,
            LearningRate = h.GetValueOrDefault("learning_rate", SetFitOptions.Defaults.LearningRate),
            Progress = setup.TrainingProgress,
            CancellationToken = setup.CancellationToken,
        });
    }
}
