using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// What <see cref="TokenAttributor"/> needs from a classifier, whatever its strategy: the tokens of a text as the
/// model reads them, and differentiable class scores for copies of that one row (through the network's word
/// embeddings, which the attributor replaces along the integration path).
/// </summary>
internal interface IExplainableClassifier
{
    /// <summary>The float32 network being explained.</summary>
    TransformerModel Network { get; }

    /// <summary>The tokenizer.</summary>
    TransformerTokenizer Tokenizer { get; }

    /// <summary>Class names in class-index order.</summary>
    IReadOnlyList<string> Labels { get; }

    /// <summary>Class probabilities, as the classifier predicts them.</summary>
    float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize);

    /// <summary>The token ids of one row, as the network reads them.</summary>
    int[] ExplainedTokens(string text, string? secondText);

    /// <summary>
    /// Class scores (copies, K) of <paramref name="copies"/> identical copies of one row, with a graph back to the word
    /// embeddings: logits for a classification head, label-word log-probabilities for prompts. The first
    /// <see cref="ExplainedTokens"/>.Length columns the network embeds are that row's tokens.
    /// </summary>
    Tensor ClassScores(string text, string? secondText, int copies);
}
