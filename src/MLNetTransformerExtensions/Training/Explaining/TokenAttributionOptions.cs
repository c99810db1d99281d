namespace MLNetTransformerExtensions.Training;

/// <summary>How token attributions are computed.</summary>
public enum AttributionMethod
{
    /// <summary>
    /// Integrated gradients (Sundararajan et al., 2017) on the input word embeddings: the gradient of the class score
    /// averaged along the straight path from a baseline (every word embedding zero) to the input, times the input's
    /// embedding. Attributions sum to the score's difference between input and baseline, up to the integration error
    /// that <see cref="TokenAttribution.CompletenessError"/> reports.
    /// </summary>
    IntegratedGradients,

    /// <summary>
    /// Gradient × input: the gradient of the class score at the input, times the input's word embedding. One forward and
    /// one backward pass; a local, cheaper and noisier view than integrated gradients, with no completeness property.
    /// </summary>
    GradientTimesInput,
}

/// <summary>Options of token attributions (<see cref="TokenAttribution"/>).</summary>
public sealed class TokenAttributionOptions
{
    /// <summary>Default values of <see cref="TokenAttributionOptions"/>.</summary>
    public static class Defaults
    {
        /// <summary>Integrated gradients.</summary>
        public const AttributionMethod Method = AttributionMethod.IntegratedGradients;

        /// <summary>50 integration steps, as Captum's default.</summary>
        public const int Steps = 50;
    }

    /// <summary>The attribution method.</summary>
    public AttributionMethod Method = Defaults.Method;

    /// <summary>
    /// Integration steps of <see cref="AttributionMethod.IntegratedGradients"/> (midpoint rule along the path); more steps
    /// shrink <see cref="TokenAttribution.CompletenessError"/> at the cost of one forward and backward pass each.
    /// </summary>
    public int Steps = Defaults.Steps;

    /// <summary>The class whose score is explained, by name; null explains the predicted class.</summary>
    public string? Label;

    /// <summary>Checks the values and says which is wrong.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    internal void Validate()
    {
        if (!Enum.IsDefined(Method))
        {
            throw new ArgumentOutOfRangeException(nameof(Method), Method, $"{nameof(Method)} must be a defined {nameof(AttributionMethod)}.");
        }

        if (Steps < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, $"{nameof(Steps)} must be at least 1.");
        }
    }
}
