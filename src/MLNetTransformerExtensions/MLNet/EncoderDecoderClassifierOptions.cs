namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Options of <c>EncoderDecoderClassifier</c>: BART with its classification head (<see cref="ClassificationStrategy.Head"/>),
/// or BART's LM head or T5 text-to-text (<see cref="ClassificationStrategy.Prompt"/>: the template, e.g.
/// <c>sst2 sentence: {text}</c>, goes to the encoder and the decoder scores each class's target text).
/// </summary>
public sealed class EncoderDecoderClassifierOptions : TransformerClassifierOptions
{
}
