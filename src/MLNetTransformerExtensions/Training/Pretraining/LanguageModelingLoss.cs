using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>A batch of packed sequences as tensors, right-padded.</summary>
/// <param name="Ids">Token ids (B, T), int64.</param>
/// <param name="Mask">1 on real tokens, 0 on padding (B, T), int64.</param>
/// <param name="RealTokens">The number of real tokens.</param>
internal sealed record PackedBatch(Tensor Ids, Tensor Mask, long RealTokens)
{
    public static PackedBatch Collate(IReadOnlyList<int[]> rows, int padId)
    {
        var batch = EncodedBatch.Pad(rows, null, padId, PaddingSide.Right);
        var (ids, mask, _) = Batches.ToTensors(batch);
        return new PackedBatch(ids, mask, batch.Lengths.Sum(l => (long)l));
    }
}

/// <summary>
/// The two pretraining objectives, each returning the summed cross-entropy over the tokens it predicts and their
/// number, so training divides for the mean and validation sums over batches. Only the predicted positions go
/// through the vocabulary projection.
/// </summary>
internal static class LanguageModelingLoss
{
    /// <summary>
    /// BERT's masked-LM objective (HuggingFace's <c>DataCollatorForLanguageModeling</c>): each real, non-special token is
    /// chosen with <paramref name="probability"/>; a chosen token becomes the mask token with probability 0.8, a
    /// random token with 0.1, and stays with 0.1; the loss is on the chosen positions only. Draws from torch's global
    /// generator, which the caller seeds.
    /// </summary>
    public static (Tensor Sum, long Count) MaskedLanguageModeling(LanguageModel model, PackedBatch batch, double probability, int maskTokenId, IReadOnlyList<int> specialTokenIds)
    {
        var ids = batch.Ids;
        var special = batch.Mask.eq(0);
        foreach (var id in specialTokenIds)
        {
            special = special.logical_or(ids.eq(id));
        }

        var chosen = rand(ids.shape).lt(probability).logical_and(special.logical_not());   // (B, T)
        var roll = rand(ids.shape);
        var toMask = chosen.logical_and(roll.lt(0.8));
        var toRandom = chosen.logical_and(roll.ge(0.8)).logical_and(roll.lt(0.9));
        var corrupted = ids.masked_fill(toMask, maskTokenId);
        corrupted = where(toRandom, randint(model.Config.VocabSize, ids.shape, dtype: ScalarType.Int64), corrupted);

        var hidden = model.HiddenStates(corrupted, batch.Mask, null);                          // (B, T, H)
        var positions = chosen.reshape(-1).nonzero().squeeze(1);                               // (N)
        var predicted = hidden.reshape(-1, hidden.shape[^1]).index_select(0, positions);     // (N, H)
        var targets = ids.reshape(-1).index_select(0, positions);                            // (N): the originals
        var loss = nn.functional.cross_entropy(model.PredictTokens(predicted).to(ScalarType.Float32), targets, reduction: nn.Reduction.Sum); // float32 for the softmax and the loss, also when the model runs in bfloat16 (mixed-precision training)
        return (loss, positions.shape[0]);
    }

    /// <summary>GPT-2's causal objective: position t predicts token t + 1, wherever both are real.</summary>
    public static (Tensor Sum, long Count) CausalLanguageModeling(LanguageModel model, PackedBatch batch)
    {
        var length = batch.Ids.shape[1];
        var hidden = model.HiddenStates(batch.Ids, batch.Mask, null);                               // (B, T, H)
        var positions = batch.Mask.narrow(1, 1, length - 1).reshape(-1).nonzero().squeeze(1);       // (N): real next tokens
        var inputs = hidden.narrow(1, 0, length - 1).reshape(-1, hidden.shape[^1]).index_select(0, positions); // (N, H)
        var targets = batch.Ids.narrow(1, 1, length - 1).reshape(-1).index_select(0, positions);    // (N)
        var loss = nn.functional.cross_entropy(model.PredictTokens(inputs).to(ScalarType.Float32), targets, reduction: nn.Reduction.Sum); // float32 for the softmax and the loss, also when the model runs in bfloat16 (mixed-precision training)
        return (loss, positions.shape[0]);
    }
}
