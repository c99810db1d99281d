namespace MLNetTransformerExtensions.Experiments;

/// <summary>One trial the search wants run; the runner fills in <see cref="Result"/> before asking for the next.</summary>
internal sealed class TrialPlan(ExperimentCandidate candidate, Hyperparameters hyperparameters, double dataFraction, int round)
{
    public ExperimentCandidate Candidate { get; } = candidate;

    public Hyperparameters Hyperparameters { get; } = hyperparameters;

    public double DataFraction { get; } = dataFraction;

    public int Round { get; } = round;

    /// <summary>Null when the runner skipped the plan (it could not finish in the time left).</summary>
    public TrialResult? Result { get; set; }
}

/// <summary>
/// The order trials are run in: rounds of (1) every cheap candidate once, then (2) one successive-halving bracket over
/// the expensive ones.
/// </summary>
/// <remarks>
/// <para>Why this shape: classic pipelines train in seconds and set the bar a transformer must clear, so they run
/// first, and the user has a usable model within seconds whatever the budget. A transformer trial costs minutes, so
/// configurations are first compared on a ninth of the training rows, the best third of them goes on to a third of the
/// rows, and the best of those to all rows (successive halving with η = 3, over data fractions rather than epochs
/// because epochs are one of the searched hyperparameters). Rungs that would train on fewer than
/// <see cref="MinimumRungRows"/> rows are dropped: on small data every configuration trains on all rows.</para>
/// <para>The first round starts from every candidate's defaults; later rounds draw new configurations. Draws come from
/// one seeded random source in a fixed order, and which plans are made never depends on the clock (only whether the
/// runner skips one does), so with a trial limit and no time limit a seed always gives the same trials.</para>
/// </remarks>
internal static class SearchStrategy
{
    public const int Eta = 3;
    public const int MaxConfigurationsPerCandidate = 3;
    public const int MinimumRungRows = 300;

    /// <summary>The training-data fractions of a bracket's rungs for <paramref name="rows"/> training rows, smallest first; always ends with 1.</summary>
    public static IReadOnlyList<double> Rungs(long rows) =>
        [.. new[] { 1.0 / (Eta * Eta), 1.0 / Eta }.Where(f => rows * f >= MinimumRungRows), 1.0];

    /// <param name="candidates">The candidates, in the user's order.</param>
    /// <param name="trainingRows">Rows each trial trains on at fraction 1.</param>
    /// <param name="random">The seeded source of every draw.</param>
    /// <param name="prepare">Prepares a candidate before its first draw; false when it cannot be used (the runner recorded why).</param>
    /// <param name="isBetter">Whether the first completed trial beats the second on the optimised metric.</param>
    /// <param name="singleRound">Stop after the first round (no limit was given).</param>
    /// <param name="configurations">
    /// How many configurations per expensive candidate a bracket starts with (1 to <see cref="MaxConfigurationsPerCandidate"/>),
    /// given the candidates and the rungs: the runner answers from the time left, so a short budget gets a narrower bracket.
    /// </param>
    public static IEnumerable<TrialPlan> Plan(IReadOnlyList<ExperimentCandidate> candidates, long trainingRows, Random random,
        Func<ExperimentCandidate, bool> prepare, Comparison<TrialResult> isBetter, bool singleRound,
        Func<IReadOnlyList<ExperimentCandidate>, IReadOnlyList<double>, int> configurations)
    {
        var draws = new Dictionary<ExperimentCandidate, int>();
        var usable = new List<ExperimentCandidate>();
        foreach (var candidate in candidates)
        {
            usable.Add(candidate);
        }

        var prepared = new HashSet<ExperimentCandidate>();
        bool Ready(ExperimentCandidate candidate)
        {
            if (prepared.Contains(candidate))
            {
                return true;
            }

            if (!prepare(candidate))
            {
                usable.Remove(candidate);
                return false;
            }

            prepared.Add(candidate);
            return true;
        }

        Hyperparameters Draw(ExperimentCandidate candidate)
        {
            var index = draws.GetValueOrDefault(candidate);
            draws[candidate] = index + 1;
            return candidate.Sample(random, index);
        }

        var rungs = Rungs(trainingRows);
        for (var round = 0; usable.Count > 0; round++)
        {
            foreach (var candidate in usable.Where(c => !c.IsExpensive).ToList())
            {
                if (Ready(candidate))
                {
                    yield return new TrialPlan(candidate, Draw(candidate), 1, round);
                }
            }

            var expensive = usable.Where(c => c.IsExpensive).ToList().Where(Ready).ToList();
            var perCandidate = expensive.Count == 0 ? 0 : Math.Clamp(configurations(expensive, rungs), 1, MaxConfigurationsPerCandidate);
            var bracket = new List<TrialPlan>();
            foreach (var candidate in expensive)
            {
                for (var i = 0; i < perCandidate; i++)
                {
                    bracket.Add(new TrialPlan(candidate, Draw(candidate), rungs[0], round));
                }
            }

            for (var rung = 0; rung < rungs.Count && bracket.Count > 0; rung++)
            {
                foreach (var plan in bracket)
                {
                    yield return plan;
                }

                if (rung == rungs.Count - 1)
                {
                    break;
                }

                // The best third goes on (at least one); a stable sort keeps the earlier plan first on ties.
                var keep = (bracket.Count + Eta - 1) / Eta;
                var completed = bracket.Where(p => p.Result is { Status: TrialStatus.Completed }).ToList();
                var ranked = completed.Order(Comparer<TrialPlan>.Create((a, b) => isBetter(a.Result!, b.Result!))).Take(keep);
                bracket = [.. ranked.Select(p => new TrialPlan(p.Candidate, p.Hyperparameters, rungs[rung + 1], round))];
            }

            if (singleRound)
            {
                yield break;
            }
        }
    }
}
