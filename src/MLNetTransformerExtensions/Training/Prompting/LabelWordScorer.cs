using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Scores each class's label word with a language-model head, and gives the training loss of the true word: an
/// encoder reads the word at the prompt's mask (<see cref="MaskScorer"/>), a decoder reads it as the prompt's
/// continuation (<see cref="ContinuationScorer"/>), an encoder-decoder's decoder reads it as the target text given the
/// encoded prompt (<see cref="TargetScorer"/>). The one place the strategies differ.
/// </summary>
internal abstract class LabelWordScorer(int[][] labelTokens)
{
    /// <summary>Each class's label word tokens.</summary>
    protected int[][] LabelTokens { get; } = labelTokens;

    /// <summary>The scorer for a kind of model.</summary>
    public static LabelWordScorer For(ClassifierKind kind, int[][] labelTokens, bool lengthNormalized) => kind switch
    {
        ClassifierKind.Encoder => new MaskScorer(labelTokens),
        ClassifierKind.EncoderDecoder => new TargetScorer(labelTokens, lengthNormalized),
        _ => new ContinuationScorer(labelTokens, lengthNormalized),
    };

    /// <summary>The most tokens a prompt must leave room for after it (a decoder's longest continuation; 0 for an encoder).</summary>
    public abstract int TokensAfterPrompt { get; }

    /// <summary>Label-word scores (B, K) of encoded prompts: log-probabilities, computed in float32 from the vocabulary logits.</summary>
    public abstract double[][] Score(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId);

    /// <summary>
    /// The same label-word scores as <see cref="Score"/>, as a (B, K) float32 tensor with its graph (what token
    /// attributions differentiate).
    /// </summary>
    public abstract Tensor ScoreTensor(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId);

    /// <summary>The training loss of the true label words (a scalar tensor in the caller's dispose scope).</summary>
    public abstract Tensor Loss(LanguageModel model, IReadOnlyList<PromptRow> rows, long[] labels, int padTokenId);

    /// <summary>
    /// Final hidden states (B, T, H) of padded sequences; <paramref name="offsets"/> is each row's first column. Padding
    /// is timed as batching and the network as the forward pass (the callers time their head work after it).
    /// </summary>
    protected static Tensor Hidden(LanguageModel model, IReadOnlyList<int[]> sequences, int padTokenId, PaddingSide side, out int[] offsets)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var batch = EncodedBatch.Pad(sequences, null, padTokenId, side);
        offsets = [.. Enumerable.Range(0, batch.BatchSize).Select(batch.FirstTokenColumn)];
        var (ids, mask, _) = Batches.ToTensors(batch);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(batch.Lengths.Sum(), (long)batch.BatchSize * batch.SequenceLength);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var hidden = model.HiddenStates(ids, mask, null);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return hidden;
    }
}
