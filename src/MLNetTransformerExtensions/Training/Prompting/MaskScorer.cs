using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// An encoder's label words, read at the prompt's mask by the masked-LM head (PET): each word is one token, scored by
/// its log-probability at the mask; training is cross-entropy over the label words' logits there.
/// </summary>
internal sealed class MaskScorer(int[][] labelTokens) : LabelWordScorer(labelTokens)
{
    public override int TokensAfterPrompt => 0;

    public override double[][] Score(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var classes = LabelTokens.Length;
        var scores = new double[rows.Count][];
        var flat = ScoreTensor(model, rows, padTokenId).contiguous().data<float>().ToArray();
        for (var r = 0; r < rows.Count; r++)
        {
            scores[r] = [.. flat.AsSpan(r * classes, classes).ToArray().Select(v => (double)v)];
        }

        return scores;
    }

    public override Tensor ScoreTensor(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var hidden = Hidden(model, [.. rows.Select(r => r.Ids)], padTokenId, PaddingSide.Right, out var offsets);
        var head = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var atMask = hidden[tensor(Enumerable.Range(0, rows.Count).Select(r => (long)r).ToArray()),
            tensor(rows.Select((r, i) => (long)(offsets[i] + r.Position)).ToArray())];                       // (B, H)
        var logProbabilities = model.PredictTokens(atMask).to(ScalarType.Float32).log_softmax(-1)
            .index_select(1, tensor(LabelTokens.Select(t => (long)t[0]).ToArray()));                        // (B, K)
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, head);
        return logProbabilities;
    }

    public override Tensor Loss(LanguageModel model, IReadOnlyList<PromptRow> rows, long[] labels, int padTokenId)
    {
        var hidden = Hidden(model, [.. rows.Select(r => r.Ids)], padTokenId, PaddingSide.Right, out var offsets);
        var head = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var atMask = hidden[tensor(Enumerable.Range(0, rows.Count).Select(r => (long)r).ToArray()),
            tensor(rows.Select((r, i) => (long)(offsets[i] + r.Position)).ToArray())];                   // (B, H)
        var wordLogits = model.PredictTokens(atMask).index_select(1, tensor(LabelTokens.Select(t => (long)t[0]).ToArray())); // (B, K)
        var loss = nn.functional.cross_entropy(wordLogits.to(ScalarType.Float32), tensor(labels)); // float32 for the softmax and the loss, also when the model runs in bfloat16 (mixed-precision training)
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, head);
        return loss;
    }
}
