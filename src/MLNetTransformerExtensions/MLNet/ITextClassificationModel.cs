namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A trained text classifier, as the ML.NET adapter (<see cref="TextClassificationTransformer"/>) sees it:
/// it turns a batch of texts (or text pairs) into class probabilities and saves itself to a folder.
/// </summary>
/// <remarks>
/// <para>
/// The adapter serializes its calls into one classifier, so implementations need not be thread-safe.
/// The transformer that holds a classifier owns it and disposes it.
/// </para>
/// <para>
/// Text reaches the classifier exactly as the data view holds it; a missing or empty text arrives as
/// <see cref="string.Empty"/> (never <see langword="null"/>), both when training and when scoring.
/// </para>
/// </remarks>
public interface ITextClassificationModel : IDisposable
{
    /// <summary>The number of classes K; every probability row has K entries, in class-index order.</summary>
    int ClassCount { get; }

    /// <summary>Computes class probabilities for a batch of rows.</summary>
    /// <param name="texts">The first (or only) text of each row.</param>
    /// <param name="secondTexts">
    /// The second text of each row, the same count as <paramref name="texts"/>, for text-pair tasks;
    /// <see langword="null"/> for single-text tasks.
    /// </param>
    /// <returns>
    /// One row per input row, in order: <c>float[batch][ClassCount]</c>, each row a probability
    /// distribution over the classes (non-negative, summing to 1).
    /// </returns>
    float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts);

    /// <summary>
    /// Writes everything needed to load this classifier again into <paramref name="folder"/>, which exists
    /// and is empty. Real models write a HuggingFace layout (config, weights, tokenizer files).
    /// </summary>
    /// <param name="folder">The folder to write into.</param>
    void SaveTo(string folder);
}
