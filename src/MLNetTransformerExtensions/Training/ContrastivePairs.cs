namespace MLNetTransformerExtensions.Training;

/// <summary>One training pair of SetFit's contrastive step: two row indices, and whether their labels are the same.</summary>
/// <param name="First">The first row.</param>
/// <param name="Second">The second row.</param>
/// <param name="Similar">True when both rows have the same label (target cosine 1), false otherwise (target 0).</param>
internal readonly record struct ContrastivePair(int First, int Second, bool Similar);

/// <summary>
/// SetFit's pair generation (Tunstall et al. 2022; huggingface/setfit's original <c>sentence_pairs_generation</c>): in
/// each round every row, in a seeded shuffled order, is paired once with a random row of its own label (a positive
/// pair) and once with a random row of another label (a negative one), so the pairs are balanced.
/// </summary>
internal static class ContrastivePairs
{
    /// <summary>Draws the pairs.</summary>
    /// <param name="labels">Each row's class index.</param>
    /// <param name="iterations">Rounds over the rows (SetFit's <c>num_iterations</c>): 2 × rows pairs each.</param>
    /// <param name="pairCount">A number of pairs instead of rounds (the last round stops part-way), or null.</param>
    /// <param name="seed">The same seed draws the same pairs.</param>
    /// <returns>The pairs, positives and negatives alternating.</returns>
    /// <exception cref="ArgumentException">The rows hold fewer than two classes, so no negative pair exists.</exception>
    public static List<ContrastivePair> Generate(IReadOnlyList<int> labels, int iterations, int? pairCount, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var byClass = labels.Select((label, row) => (label, row)).GroupBy(p => p.label).ToDictionary(g => g.Key, g => g.Select(p => p.row).ToArray());
        if (byClass.Count < 2)
        {
            throw new ArgumentException($"Contrastive pairs need rows of at least two classes; the {labels.Count} rows have {byClass.Count}.", nameof(labels));
        }

        var target = pairCount ?? (2L * iterations * labels.Count);
        var pairs = new List<ContrastivePair>((int)Math.Min(target, int.MaxValue));
        var random = new Random(seed);
        var order = Enumerable.Range(0, labels.Count).ToArray();
        while (pairs.Count < target)
        {
            random.Shuffle(order);
            foreach (var row in order)
            {
                // The row itself may be drawn as its positive, as in SetFit: with one example of a class there is no other.
                var same = byClass[labels[row]];
                pairs.Add(new ContrastivePair(row, same[random.Next(same.Length)], Similar: true));
                if (pairs.Count == target)
                {
                    break;
                }

                var others = labels.Count - same.Length;
                var pick = random.Next(others);
                var negative = 0;
                for (var candidate = 0; candidate < labels.Count; candidate++)
                {
                    if (labels[candidate] != labels[row] && pick-- == 0)
                    {
                        negative = candidate;
                        break;
                    }
                }

                pairs.Add(new ContrastivePair(row, negative, Similar: false));
                if (pairs.Count == target)
                {
                    break;
                }
            }
        }

        return pairs;
    }
}
