using Microsoft.ML;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// One kind of pipeline an experiment can try: how to sample its hyperparameters and how to build its trainer.
/// Adding a kind to the search is one small class deriving from this one.
/// </summary>
/// <remarks>
/// The experiment wraps what <see cref="CreateTrainer"/> returns between a <c>MapValueToKey</c> of the label (fitted on
/// all the training data, so every trial sees every class) and a <c>MapKeyToValue</c> of the predicted key, so the
/// trainer reads <see cref="TrialSetup.LabelKeyColumnName"/> and must write <c>Score</c> (the class probabilities) and
/// <see cref="TrialSetup.PredictedLabelKeyColumnName"/>.
/// </remarks>
public abstract class ExperimentCandidate
{
    /// <summary>The name shown in the leaderboard, unique among an experiment's candidates.</summary>
    public abstract string Name { get; }

    /// <summary>
    /// True for candidates whose trials cost minutes (transformers): the search gives them successive halving over
    /// training-data fractions after every cheap candidate has run.
    /// </summary>
    public abstract bool IsExpensive { get; }

    /// <summary>Called once, before this candidate's first trial, with a sample of the training texts (e.g. to choose a maximum length).</summary>
    /// <param name="data">What the experiment knows of the data.</param>
    /// <param name="cancellationToken">Stops a slow preparation (a download).</param>
    public virtual void Prepare(ExperimentData data, CancellationToken cancellationToken)
    {
    }

    /// <summary>The hyperparameters of one trial: <paramref name="index"/> 0 is the candidate's defaults, later ones are drawn from its search space.</summary>
    /// <param name="random">The search's random source (seeded: same seed, same draws).</param>
    /// <param name="index">How many configurations of this candidate were drawn before.</param>
    /// <returns>The hyperparameters.</returns>
    public abstract Hyperparameters Sample(Random random, int index);

    /// <summary>Builds the trainer (and any featurisation it needs) for one trial.</summary>
    /// <param name="mlContext">The trial's own context, seeded by the experiment.</param>
    /// <param name="setup">Columns, hyperparameters, validation rows, cancellation and progress of the trial.</param>
    /// <returns>An estimator from the keyed label and the text columns to <c>Score</c> and the predicted key.</returns>
    public abstract IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup);

    /// <summary>
    /// The cost model's first guess of the training seconds per row and epoch, before the candidate has run once
    /// (after that, measured times replace it).
    /// </summary>
    public abstract double EstimatedSecondsPerRow { get; }

    /// <summary>Passes over the training data a trial with <paramref name="hyperparameters"/> makes (1 for learners that do not count epochs).</summary>
    /// <param name="hyperparameters">The trial's hyperparameters.</param>
    /// <returns>The number of passes the cost model multiplies by.</returns>
    public virtual double Epochs(Hyperparameters hyperparameters) => 1;

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>What an experiment tells its candidates about the training data.</summary>
/// <param name="RowCount">Training rows (before any hold-out).</param>
/// <param name="ClassNames">The classes, in key order.</param>
/// <param name="SampleTexts">Up to 2,000 texts of the first column, for length statistics.</param>
/// <param name="SampleSecondTexts">The matching texts of the second column, or null.</param>
public sealed record ExperimentData(long RowCount, IReadOnlyList<string> ClassNames, IReadOnlyList<string> SampleTexts, IReadOnlyList<string>? SampleSecondTexts);

/// <summary>Everything a candidate needs to build one trial's trainer.</summary>
public sealed class TrialSetup
{
    /// <summary>The keyed label column the trainer reads.</summary>
    public required string LabelKeyColumnName { get; init; }

    /// <summary>The text column.</summary>
    public required string TextColumnName { get; init; }

    /// <summary>The second text column, or null.</summary>
    public string? SecondTextColumnName { get; init; }

    /// <summary>The column the trainer must write the predicted key to.</summary>
    public required string PredictedLabelKeyColumnName { get; init; }

    /// <summary>The trial's hyperparameters.</summary>
    public required Hyperparameters Hyperparameters { get; init; }

    /// <summary>The seed of the trial (for trainers that take one outside the context).</summary>
    public required int Seed { get; init; }

    /// <summary>The validation rows with the keyed label, for trainers that validate per epoch; null when cross-validating.</summary>
    public IDataView? ValidationSet { get; init; }

    /// <summary>Cancels the trial (budget, user, or early stopping).</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>Receives a transformer trainer's per-step and per-epoch reports (the experiment stops clearly losing trials from them).</summary>
    public IProgress<TrainingProgress>? TrainingProgress { get; init; }
}
