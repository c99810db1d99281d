using MLNetTransformerExtensions.Modeling;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Modeling;

/// <summary>
/// <see cref="TransformerModel.Attentions"/> on the hf-tiny fixtures: the explicit path reproduces the fused kernel's
/// hidden states, and its weights are distributions that respect padding and (for GPT-2) causality. The fixtures hold
/// no HuggingFace <c>attentions</c>, so the parity is with our own fused forward pass, which matches HuggingFace
/// (<see cref="ModelParityTests"/>).
/// </summary>
[TestClass]
public sealed class AttentionsTests
{
    private const double Tolerance = 1e-5;

    public static IEnumerable<object[]> Families => ModelParityTests.Families;

    /// <summary>Two rows: six real tokens, and four real tokens then two padded ones (right padding).</summary>
    private static (Tensor Ids, Tensor Mask) Batch(TransformerConfig config)
    {
        var pad = config.PadTokenId ?? 0;
        long[] ids = [5, 17, 23, 42, 8, 11, 9, 31, 27, 14, pad, pad];
        long[] mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        return (tensor(ids, [2, 6]), tensor(mask, [2, 6]));
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void WeightsAreDistributionsOverRealKeysAndCausalForTheDecoder(string family)
    {
        var (model, _) = ModelParityTests.Load(family);
        using var scope = NewDisposeScope();
        var (ids, mask) = Batch(model.Config);
        var attentions = model.Attentions(ids, mask, null);
        try
        {
            Assert.AreEqual(model.Config.NumLayers, attentions.Count, "one map per layer");
            foreach (var (layer, index) in attentions.Select((a, i) => (a, i)))
            {
                CollectionAssert.AreEqual(new long[] { 2, model.Config.NumHeads, 6, 6 }, layer.shape, $"layer {index} shape");
                var w = (float[,,,])layer.data<float>().ToNDArray();
                for (var b = 0; b < 2; b++)
                {
                    var real = b == 0 ? 6 : 4;
                    for (var h = 0; h < model.Config.NumHeads; h++)
                    {
                        for (var q = 0; q < real; q++)
                        {
                            double sum = 0;
                            for (var k = 0; k < 6; k++)
                            {
                                sum += w[b, h, q, k];
                                if (k >= real)
                                {
                                    Assert.AreEqual(0f, w[b, h, q, k], $"layer {index} row {b} head {h}: query {q} attends to padded key {k}");
                                }

                                if (family == "gpt2" && k > q)
                                {
                                    Assert.AreEqual(0f, w[b, h, q, k], $"layer {index} row {b} head {h}: query {q} sees the later key {k}");
                                }
                            }

                            Assert.AreEqual(1.0, sum, Tolerance, $"layer {index} row {b} head {h} query {q}: weights sum to {sum}");
                        }
                    }
                }
            }

            if (family != "gpt2")
            {
                // An encoder's first token attends to later tokens too (bidirectional); the decoder test above forbids it.
                Assert.IsTrue(attentions[0][0, TensorIndex.Colon, 0, TensorIndex.Slice(1, 6)].sum().item<float>() > 0.01f, "the first token sees the rest of the sentence");
            }
        }
        finally
        {
            foreach (var a in attentions)
            {
                a.Dispose();
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void TheExplicitPathKeepsTheFusedKernelsHiddenStatesAndIsBatchIndependent(string family)
    {
        var (model, _) = ModelParityTests.Load(family);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (ids, mask) = Batch(model.Config);
        var fused = model.HiddenStates(ids, mask, null);
        Tensor explicitHidden;
        using (AttentionCapture.Begin())
        {
            explicitHidden = model.HiddenStates(ids, mask, null);
        }

        // Padded query rows are excluded: what they hold differs by implementation and no head reads them.
        var worst = (fused - explicitHidden).abs().mul(mask.unsqueeze(-1)).max().item<float>();
        Assert.IsTrue(worst < 1e-4, $"{family}: the explicit attention changes hidden states by {worst:E2}");

        var batched = model.Attentions(ids, mask, null);
        var alone = model.Attentions(ids[TensorIndex.Slice(1, 2), TensorIndex.Slice(0, 4)], mask[TensorIndex.Slice(1, 2), TensorIndex.Slice(0, 4)], null);
        try
        {
            for (var l = 0; l < batched.Count; l++)
            {
                var inBatch = batched[l][TensorIndex.Slice(1, 2), TensorIndex.Colon, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 4)];
                var difference = (inBatch - alone[l]).abs().max().item<float>();
                Assert.IsTrue(difference < 1e-5, $"{family} layer {l}: the padded row's weights differ from the row alone by {difference:E2}");
            }
        }
        finally
        {
            foreach (var a in batched.Concat(alone))
            {
                a.Dispose();
            }
        }
    }
}
