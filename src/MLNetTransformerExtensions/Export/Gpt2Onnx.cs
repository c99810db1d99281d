// Writes Modeling/Gpt2.cs (GPT2ForSequenceClassification) as ONNX.
using MLNetTransformerExtensions.Modeling;

namespace MLNetTransformerExtensions.Export;

/// <summary>
/// The GPT-2 sequence classifier as an ONNX graph, block by block as <c>Gpt2.cs</c> runs it: the bias-free <c>score</c>
/// on each row's last real token, whichever side the batch is padded on.
/// </summary>
internal static class Gpt2Onnx
{
    /// <summary>Writes the graph and returns the logits' value name.</summary>
    /// <param name="g">The graph builder over the model's state dict.</param>
    /// <param name="config">A GPT-2 config.</param>
    /// <param name="inputIds">The input_ids input.</param>
    /// <param name="attentionMask">The attention_mask input.</param>
    public static string Write(OnnxLayers g, TransformerConfig config, string inputIds, string attentionMask)
    {
        var w = g.Writer;
        var floatMask = g.FloatMask(attentionMask);
        var sequence = g.SequencePositions(inputIds);

        // Token + position embeddings; positions count real tokens, so a left-padded row sees its unpadded positions.
        var tokens = w.Node("Gather", "transformer.wte", [w.Weight("transformer.wte.weight", g["transformer.wte.weight"]), inputIds]);
        var positions = w.Node("Gather", "transformer.wpe", [w.Weight("transformer.wpe.weight", g["transformer.wpe.weight"]), g.RealTokenPositions(attentionMask)]);
        var hidden = w.Node("Add", "transformer.embeddings", [tokens, positions]);

        var mask = g.DecoderMask(attentionMask, sequence);
        for (var i = 0; i < config.NumLayers; i++)
        {
            hidden = Block(g, config, i, hidden, mask);
        }

        hidden = g.LayerNorm(hidden, "transformer.ln_f", config.LayerNormEps);
        return g.Linear(g.LastToken(hidden, floatMask, sequence), "score");
    }

    /// <summary>One pre-LN block, as GPT2Block: x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
    private static string Block(OnnxLayers g, TransformerConfig config, int index, string hidden, AttentionMask mask)
    {
        var prefix = $"transformer.h.{index}";
        var w = g.Writer;
        // Conv1D weights are stored (in, out) already: c_attn packs query, key and value along its output.
        var normed = g.LayerNorm(hidden, prefix + ".ln_1", config.LayerNormEps);
        var qkv = g.Linear(normed, prefix + ".attn.c_attn", g[prefix + ".attn.c_attn.weight"], g[prefix + ".attn.c_attn.bias"]);
        var scale = (config.ScaleAttentionWeights ? 1 / Math.Sqrt(config.HeadDim) : 1.0) / (config.ScaleAttentionByInverseLayerIndex ? index + 1 : 1);
        var context = g.Attention(qkv, prefix + ".attn", config.HiddenSize, config.NumHeads, mask, scale);
        hidden = w.Node("Add", prefix + ".attn_residual", [hidden, g.Linear(context, prefix + ".attn.c_proj", g[prefix + ".attn.c_proj.weight"], g[prefix + ".attn.c_proj.bias"])]);

        normed = g.LayerNorm(hidden, prefix + ".ln_2", config.LayerNormEps);
        var inner = g.Activate(g.Linear(normed, prefix + ".mlp.c_fc", g[prefix + ".mlp.c_fc.weight"], g[prefix + ".mlp.c_fc.bias"]), prefix + ".mlp.act", config.HiddenAct);
        return w.Node("Add", prefix + ".mlp_residual", [hidden, g.Linear(inner, prefix + ".mlp.c_proj", g[prefix + ".mlp.c_proj.weight"], g[prefix + ".mlp.c_proj.bias"])]);
    }
}
