using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// An encoder-decoder's label words are target texts (T5's text-to-text): the prompt goes through the encoder once,
/// and the decoder reads every class's target shifted right behind the decoder start token (teacher forcing). A class
/// scores the sum of its target tokens' log-probabilities, special tokens included as HuggingFace's <c>labels=</c>
/// counts them, or their mean. Training minimises the cross-entropy of the true target's tokens (the <c>labels=</c> loss).
/// </summary>
internal sealed class TargetScorer : LabelWordScorer
{
    /// <summary>HuggingFace's ignore index for padded labels.</summary>
    private const long IgnoredLabel = -100;

    private readonly bool _lengthNormalized;

    public TargetScorer(int[][] labelTokens, bool lengthNormalized)
        : base(labelTokens) => _lengthNormalized = lengthNormalized;

    /// <summary>The targets go to the decoder, so the prompt may use the whole length.</summary>
    public override int TokensAfterPrompt => 0;

    public override double[][] Score(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var classes = LabelTokens.Length;
        var sums = TargetSums(model, rows, padTokenId).to(ScalarType.Float64).data<double>().ToArray();
        var scores = new double[rows.Count][];
        for (var r = 0; r < rows.Count; r++)
        {
            scores[r] = new double[classes];
            for (var k = 0; k < classes; k++)
            {
                var sum = sums[r * classes + k];
                scores[r][k] = _lengthNormalized ? sum / LabelTokens[k].Length : sum;
            }
        }

        return scores;
    }

    public override Tensor ScoreTensor(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var sums = TargetSums(model, rows, padTokenId).view(rows.Count, LabelTokens.Length);                  // (B, K)
        return _lengthNormalized ? sums / tensor(LabelTokens.Select(t => (float)t.Length).ToArray()) : sums;
    }

    /// <summary>Each row's sum of every target's token log-probabilities (float32, with its graph): (B·K), row-major.</summary>
    private Tensor TargetSums(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var generator = AsGenerator(model);
        var (encoder, mask) = Encode(generator, rows, padTokenId);
        var classes = LabelTokens.Length;
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        // Every row against every target: (B, T, H) -> (B·K, T, H), targets (K, U) -> (B·K, U).
        var labels = Labels(LabelTokens, padTokenId).repeat(rows.Count, 1);
        var real = labels.ne(IgnoredLabel);
        var hidden = generator.DecoderHiddenStates(
            generator.ShiftRight(labels.masked_fill(real.logical_not(), padTokenId)),
            encoder.repeat_interleave(classes, dim: 0),
            mask.repeat_interleave(classes, dim: 0));
        var logSoftmax = generator.PredictTokens(hidden).to(ScalarType.Float32).log_softmax(-1);            // (B·K, U, V)
        var picked = logSoftmax.gather(2, labels.masked_fill(real.logical_not(), 0).unsqueeze(2)).squeeze(2)  // (B·K, U)
            .mul(real);
        var sums = picked.sum(1);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return sums;
    }

    public override Tensor Loss(LanguageModel model, IReadOnlyList<PromptRow> rows, long[] labels, int padTokenId)
    {
        var generator = AsGenerator(model);
        var (encoder, mask) = Encode(generator, rows, padTokenId);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var targets = Labels([.. labels.Select(y => LabelTokens[y])], padTokenId);                          // (B, U)
        var decoderInputs = generator.ShiftRight(targets.masked_fill(targets.eq(IgnoredLabel), padTokenId));
        var logits = generator.PredictTokens(generator.DecoderHiddenStates(decoderInputs, encoder, mask)); // (B, U, V)
        // Its default ignore_index is -100, as HuggingFace pads labels; float32 also when the model runs in bfloat16.
        var loss = nn.functional.cross_entropy(logits.flatten(0, 1).to(ScalarType.Float32), targets.flatten());
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return loss;
    }

    private static ConditionalGenerationModel AsGenerator(LanguageModel model) => model as ConditionalGenerationModel
        ?? throw new NotSupportedException($"Target scoring needs an encoder-decoder (BART, T5), not {model.GetType().Name}.");

    /// <summary>The encoder's states for right-padded prompts and their mask. Padding is timed as batching, the encoder as the forward pass.</summary>
    private static (Tensor Hidden, Tensor Mask) Encode(ConditionalGenerationModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var batch = EncodedBatch.Pad([.. rows.Select(r => r.Ids)], null, padTokenId, PaddingSide.Right);
        var (ids, mask, _) = Batches.ToTensors(batch);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(batch.Lengths.Sum(), (long)batch.BatchSize * batch.SequenceLength);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var hidden = model.HiddenStates(ids, mask, null);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return (hidden, mask);
    }

    /// <summary>Targets padded on the right with -100, as HuggingFace pads <c>labels</c>: (N, longest).</summary>
    private static Tensor Labels(IReadOnlyList<int[]> targets, int padTokenId)
    {
        var batch = EncodedBatch.Pad(targets, null, padTokenId, PaddingSide.Right);
        var values = batch.InputIds.Select((id, i) => batch.AttentionMask[i] == 1 ? id : IgnoredLabel).ToArray();
        return tensor(values, [batch.BatchSize, batch.SequenceLength]);
    }
}
