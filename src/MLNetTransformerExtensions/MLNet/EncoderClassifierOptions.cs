namespace MLNetTransformerExtensions.MLNet;

/// <summary>Options of <c>EncoderClassifier</c>: BERT, RoBERTa or DistilBERT, classifying from the first token.</summary>
public sealed class EncoderClassifierOptions : TransformerClassifierOptions
{
}
