namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Why a classifier scored a text as it did: one attribution per token of the sequence the model read (special tokens
/// and, for the prompt strategy, the template included), for one class.
/// </summary>
/// <remarks>
/// The explained score is the class's logit for the classification-head strategy, and the label word's
/// log-probability (uncalibrated) for the prompt strategy. Special tokens ([CLS], [SEP], &lt;s&gt;, the mask) keep
/// their embeddings in the baseline, so their attribution is zero: the baseline is the input with every other word
/// embedding set to zero. A positive attribution pushed the score up.
/// </remarks>
public sealed class TokenAttribution
{
    internal TokenAttribution(
        IReadOnlyList<string> tokens, IReadOnlyList<double> attributions, string predictedLabel, string label,
        AttributionMethod method, int steps, double score, double baselineScore, double? completenessError)
    {
        Tokens = tokens;
        Attributions = attributions;
        PredictedLabel = predictedLabel;
        Label = label;
        Method = method;
        Steps = steps;
        Score = score;
        BaselineScore = baselineScore;
        CompletenessError = completenessError;
    }

    /// <summary>The tokens the model read, as the vocabulary spells them (<c>##ing</c>, <c>Ġgood</c>).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>One attribution per token, in the units of <see cref="Score"/>.</summary>
    public IReadOnlyList<double> Attributions { get; }

    /// <summary>The class the classifier predicts for the text.</summary>
    public string PredictedLabel { get; }

    /// <summary>The class whose score is explained.</summary>
    public string Label { get; }

    /// <summary>The method that computed the attributions.</summary>
    public AttributionMethod Method { get; }

    /// <summary>Integration steps (1 for gradient × input).</summary>
    public int Steps { get; }

    /// <summary>The explained class's score for the input.</summary>
    public double Score { get; }

    /// <summary>The explained class's score for the baseline (word embeddings zero, special tokens kept).</summary>
    public double BaselineScore { get; }

    /// <summary>
    /// Integrated gradients only: the sum of <see cref="Attributions"/> minus (<see cref="Score"/> −
    /// <see cref="BaselineScore"/>), which is zero for the exact integral; more steps shrink it. Null for gradient × input.
    /// </summary>
    public double? CompletenessError { get; }
}
