namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// Estimates how long a trial will take, so the experiment never starts one that cannot finish in the time left.
/// </summary>
/// <remarks>
/// A trial costs about <c>rows × epochs × s_train + validation rows × s_score</c> plus a fixed setup. Once a candidate
/// has completed a trial, its measured seconds per training row-epoch and per scored row are used. Before that, its
/// own guess (<see cref="ExperimentCandidate.EstimatedSecondsPerRow"/>, from the model's size for transformers) is
/// scaled by how far such guesses were off for the expensive candidates already measured on this machine.
/// </remarks>
internal sealed class CostModel
{
    /// <summary>Estimates are multiplied by this before comparing with the time left: being wrong by 25 % should not break the promise.</summary>
    public const double SafetyFactor = 1.25;

    private readonly Dictionary<ExperimentCandidate, (double Train, double Score)> _measured = [];
    private readonly List<double> _expensiveRatios = [];

    public void Record(ExperimentCandidate candidate, double trainSecondsPerRowEpoch, double scoreSecondsPerRow)
    {
        if (!_measured.ContainsKey(candidate) && candidate.IsExpensive && candidate.EstimatedSecondsPerRow > 0)
        {
            _expensiveRatios.Add(trainSecondsPerRowEpoch / candidate.EstimatedSecondsPerRow);
        }

        _measured[candidate] = (trainSecondsPerRowEpoch, scoreSecondsPerRow);
    }

    /// <summary>Records a training pace seen in a trial that did not finish; the scoring pace stays as it was known or guessed.</summary>
    public void RecordTraining(ExperimentCandidate candidate, double trainSecondsPerRowEpoch)
    {
        var score = _measured.TryGetValue(candidate, out var known) ? known.Score
            : candidate.IsExpensive ? trainSecondsPerRowEpoch / 3 : trainSecondsPerRowEpoch / 10;
        Record(candidate, trainSecondsPerRowEpoch, score);
    }

    public TimeSpan Estimate(TrialPlan plan, long trainingRows, long validationRows, int folds) =>
        Estimate(plan.Candidate, plan.DataFraction, plan.Candidate.Epochs(plan.Hyperparameters), trainingRows, validationRows, folds);

    /// <summary>
    /// The cost of a successive-halving bracket that starts <paramref name="perCandidate"/> configurations of each
    /// candidate (at their default 3 epochs) and keeps the best third at each rung.
    /// </summary>
    public TimeSpan EstimateBracket(IReadOnlyList<ExperimentCandidate> candidates, IReadOnlyList<double> rungs, int perCandidate, long trainingRows, long validationRows, int folds)
    {
        var total = TimeSpan.Zero;
        var configurations = (double)perCandidate * candidates.Count;
        foreach (var fraction in rungs)
        {
            // Which candidates survive is unknown in advance: charge each rung at the candidates' average cost.
            var average = candidates.Average(c => Estimate(c, fraction, 3, trainingRows, validationRows, folds).TotalSeconds);
            total += TimeSpan.FromSeconds(Math.Ceiling(configurations) * average);
            configurations /= SearchStrategy.Eta;
        }

        return total;
    }

    public TimeSpan Estimate(ExperimentCandidate candidate, double dataFraction, double epochs, long trainingRows, long validationRows, int folds)
    {
        double train, score;
        if (_measured.TryGetValue(candidate, out var known))
        {
            (train, score) = known;
        }
        else
        {
            var calibration = candidate.IsExpensive && _expensiveRatios.Count > 0 ? _expensiveRatios.Average() : 1;
            train = candidate.EstimatedSecondsPerRow * calibration;
            // Scoring is one forward pass where training is a forward and a backward pass (about 3 times the work).
            score = candidate.IsExpensive ? train / 3 : train / 10;
        }

        var setup = candidate.IsExpensive ? 2.0 : 0.5;
        var seconds = folds * (setup + (trainingRows * dataFraction * epochs * train) + (validationRows * score));
        return TimeSpan.FromSeconds(seconds);
    }
}
