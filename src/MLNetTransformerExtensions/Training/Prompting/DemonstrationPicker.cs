namespace MLNetTransformerExtensions.Training;

/// <summary>Picks the few-shot demonstrations a <see cref="PromptClassifier"/> puts before each prompt.</summary>
internal static class DemonstrationPicker
{
    /// <summary>
    /// <paramref name="shots"/> rows balanced across classes (round robin over the classes, each class's rows in a
    /// seeded random order), then in a seeded random order, so the same seed picks the same.
    /// </summary>
    public static IReadOnlyList<Demonstration> Balanced(LabeledTexts data, int classCount, int shots, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(shots);
        var random = new Random(seed);
        var byClass = Enumerable.Range(0, classCount).Select(c =>
        {
            var rows = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == c).ToArray();
            random.Shuffle(rows);
            return rows;
        }).ToArray();

        var picked = new List<int>();
        for (var round = 0; picked.Count < shots && byClass.Any(rows => rows.Length > round); round++)
        {
            foreach (var rows in byClass.Where(rows => rows.Length > round))
            {
                if (picked.Count < shots)
                {
                    picked.Add(rows[round]);
                }
            }
        }

        var order = picked.ToArray();
        random.Shuffle(order);
        return [.. order.Select(i => new Demonstration(data.Texts[i], data.SecondTexts?[i], data.Labels[i]))];
    }
}
