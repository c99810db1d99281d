namespace MLNetTransformerExtensions.MLNet;

/// <summary>Options of <c>DecoderClassifier</c>: GPT-2, classifying from the last real token (padding = end-of-text when the model has no pad token).</summary>
public sealed class DecoderClassifierOptions : TransformerClassifierOptions
{
}
