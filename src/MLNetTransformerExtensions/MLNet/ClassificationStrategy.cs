namespace MLNetTransformerExtensions.MLNet;

/// <summary>How a transformer turns its final hidden states into classes.</summary>
public enum ClassificationStrategy
{
    /// <summary>A classification head (HuggingFace's <c>*ForSequenceClassification</c>) on the first token (encoders) or the last real token (decoders).</summary>
    Head,

    /// <summary>
    /// A prompt and one label word per class, scored by the language-model head: GPT-2's next-token head after
    /// <c>Review: {text} Sentiment:</c>, an encoder's masked-LM head at the mask of <c>{text} It was {mask}.</c>, or an
    /// encoder-decoder's decoder scoring each class's target text after <c>sst2 sentence: {text}</c> (T5's text-to-text).
    /// Works zero-shot (0 epochs), few-shot (<see cref="TransformerClassifierOptions.Shots"/>) or fine-tuned on the label words.
    /// </summary>
    Prompt,
}
