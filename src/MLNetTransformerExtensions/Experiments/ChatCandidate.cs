using Microsoft.Extensions.AI;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// A chat model as a candidate (<see cref="ChatClassifierCatalog"/>): it joins a search only when the user gives it a
/// client (<see cref="ExperimentCandidates.Chat"/>), because every trial sends one request per scored row and a paid
/// service bills them.
/// </summary>
/// <remarks>
/// Fit is free, so the candidate is cheap for the search's schedule: it runs once per round, on all rows, beside the
/// classic pipelines. Its one hyperparameter is the number of demonstrations per class. Each trial is a new classifier,
/// so the options' budgets apply per trial; a <see cref="ChatClassifierOptions.CacheDirectory"/> makes a repeated
/// configuration (same seed, same demonstrations) cost nothing.
/// </remarks>
public sealed class ChatCandidate : ExperimentCandidate
{
    private static readonly int[] s_shots = [0, 1, 2, 4];

    private readonly IChatClient _client;
    private readonly ChatClassifierOptions _options;

    /// <summary>Creates the candidate.</summary>
    /// <param name="client">The client trials send their requests to; the caller disposes it.</param>
    /// <param name="options">The chat options every trial starts from (its <see cref="ChatClassifierOptions.ModelId"/> is required); columns are the experiment's.</param>
    public ChatCandidate(IChatClient client, ChatClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ModelId, nameof(options));
        _client = client;
        _options = options.Clone();
    }

    /// <inheritdoc/>
    public override string Name => $"Chat:{_options.ModelId}";

    /// <inheritdoc/>
    public override bool IsExpensive => false;

    /// <summary>
    /// Fit sends nothing; the first guess covers scoring a row as well (about a request per row at the default
    /// concurrency), until measured times replace it.
    /// </summary>
    public override double EstimatedSecondsPerRow => 0.1;

    /// <summary>Index 0: the options' <see cref="ChatClassifierOptions.ShotsPerClass"/>; then 0, 1, 2 or 4 per class.</summary>
    /// <inheritdoc/>
    public override Hyperparameters Sample(Random random, int index)
    {
        ArgumentNullException.ThrowIfNull(random);
        return new Hyperparameters([new("shots_per_class", index == 0 ? _options.ShotsPerClass : s_shots[random.Next(s_shots.Length)])]);
    }

    /// <inheritdoc/>
    public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(setup);
        var options = _options.Clone();
        options.LabelColumnName = setup.LabelKeyColumnName;
        options.TextColumnName = setup.TextColumnName;
        options.SecondTextColumnName = setup.SecondTextColumnName;
        options.PredictedLabelColumnName = setup.PredictedLabelKeyColumnName;
        options.ShotsPerClass = (int)setup.Hyperparameters.GetValueOrDefault("shots_per_class", _options.ShotsPerClass);
        options.CancellationToken = setup.CancellationToken;
        return mlContext.MulticlassClassification.Trainers.ChatClassifier(_client, options);
    }
}
