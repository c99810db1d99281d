namespace MLNetTransformerExtensions.Training;

/// <summary>How a <see cref="PromptClassifier"/> frames classification as predicting a label word.</summary>
public sealed record PromptOptions
{
    /// <summary>
    /// The prompt template (see <see cref="PromptTemplate"/>); null for <see cref="PromptTemplate.DefaultFor"/>'s
    /// single-text default (<c>Review: {text} Sentiment:</c> for decoders, <c>{text} It was {mask}.</c> for encoders).
    /// </summary>
    public string? Template { get; init; }

    /// <summary>One label word per class, in class-index order (see <see cref="Verbalizer"/>); null for <see cref="Verbalizer.Defaults"/>.</summary>
    public IReadOnlyList<string>? LabelWords { get; init; }

    /// <summary>
    /// Scores a label word of several tokens by the mean of its tokens' log-probabilities instead of their sum, so long
    /// words are not penalised for their length (decoders; an encoder's words are single tokens).
    /// </summary>
    public bool LengthNormalized { get; init; }

    /// <summary>
    /// Demonstrations put before each prompt (in-context few-shot): taken from the training data when training, seeded
    /// and balanced across classes; 0 for none.
    /// </summary>
    public int Shots { get; init; }

    /// <summary>
    /// Contextual calibration (Zhao et al., 2021): divide the label-word probabilities by those the model gives a
    /// content-free input (<see cref="ContentFreeText"/>) in the same prompt, then normalise. Counters the model's
    /// prior for some label words.
    /// </summary>
    public bool Calibrate { get; init; }

    /// <summary>The content-free input of <see cref="Calibrate"/> (also as the second text of pairs).</summary>
    public string ContentFreeText { get; init; } = "N/A";

    /// <summary>What separates demonstrations from each other and from the prompt.</summary>
    public string DemonstrationSeparator { get; init; } = "\n";

    /// <summary>Checks the values that need no tokenizer and says which is wrong.</summary>
    /// <exception cref="ArgumentException">A value is out of range or the template is malformed.</exception>
    public void Validate()
    {
        if (Shots < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Shots), Shots, $"{nameof(Shots)} must be 0 (none) or more.");
        }

        ArgumentNullException.ThrowIfNull(ContentFreeText, nameof(ContentFreeText));
        ArgumentNullException.ThrowIfNull(DemonstrationSeparator, nameof(DemonstrationSeparator));
        if (Template is not null)
        {
            PromptTemplate.Parse(Template);
        }
    }
}

/// <summary>A labelled example shown to the model before the prompt (few-shot in-context learning).</summary>
/// <param name="Text">The first text.</param>
/// <param name="SecondText">The second text of a pair, or null.</param>
/// <param name="Label">The class index, 0-based.</param>
public sealed record Demonstration(string Text, string? SecondText, int Label);
