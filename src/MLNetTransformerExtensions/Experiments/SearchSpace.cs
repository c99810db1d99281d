namespace MLNetTransformerExtensions.Experiments;

/// <summary>Draws hyperparameter values; candidates describe their ranges with these.</summary>
public static class SearchSpace
{
    /// <summary>A value whose logarithm is uniform between those of <paramref name="low"/> and <paramref name="high"/>, rounded to 3 significant digits (so leaderboards stay readable).</summary>
    /// <param name="random">The search's random source.</param>
    /// <param name="low">The smallest value (positive).</param>
    /// <param name="high">The largest value.</param>
    /// <returns>The value.</returns>
    public static double LogUniform(Random random, double low, double high)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (!(low > 0 && high >= low))
        {
            throw new ArgumentOutOfRangeException(nameof(low), $"A log-uniform range needs 0 < low <= high; got [{low}, {high}].");
        }

        var value = Math.Exp(Math.Log(low) + (random.NextDouble() * (Math.Log(high) - Math.Log(low))));
        var digits = 2 - (int)Math.Floor(Math.Log10(value));
        return Math.Clamp(digits >= 0 ? Math.Round(value, Math.Min(digits, 15)) : value, low, high);
    }

    /// <summary>One of <paramref name="values"/>, each equally likely.</summary>
    /// <param name="random">The search's random source.</param>
    /// <param name="values">The choices.</param>
    /// <returns>The value.</returns>
    public static double Choice(Random random, params double[] values)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0)
        {
            throw new ArgumentException("A choice needs at least one value.", nameof(values));
        }

        return values[random.Next(values.Length)];
    }
}
