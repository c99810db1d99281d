// Writes Modeling/DistilBert.cs (DistilBertForSequenceClassification) as ONNX.
using MLNetTransformerExtensions.Modeling;

namespace MLNetTransformerExtensions.Export;

/// <summary>The DistilBERT sequence classifier as an ONNX graph, block by block as <c>DistilBert.cs</c> runs it.</summary>
internal static class DistilBertOnnx
{
    /// <summary>Writes the graph and returns the logits' value name.</summary>
    /// <param name="g">The graph builder over the model's state dict.</param>
    /// <param name="config">A DistilBERT config.</param>
    /// <param name="inputIds">The input_ids input.</param>
    /// <param name="attentionMask">The attention_mask input.</param>
    public static string Write(OnnxLayers g, TransformerConfig config, string inputIds, string attentionMask)
    {
        var w = g.Writer;
        var floatMask = g.FloatMask(attentionMask);

        // Embeddings: word + position (counting real tokens), LayerNorm; no token types.
        const string embeddings = "distilbert.embeddings";
        var words = w.Node("Gather", embeddings + ".word_embeddings", [w.Weight(embeddings + ".word_embeddings.weight", g[embeddings + ".word_embeddings.weight"]), inputIds]);
        var positions = w.Node("Gather", embeddings + ".position_embeddings", [w.Weight(embeddings + ".position_embeddings.weight", g[embeddings + ".position_embeddings.weight"]), g.RealTokenPositions(attentionMask)]);
        var hidden = g.LayerNorm(w.Node("Add", embeddings + ".sum", [words, positions]), embeddings + ".LayerNorm", config.LayerNormEps);

        var mask = g.EncoderMask(attentionMask, floatMask);
        for (var i = 0; i < config.NumLayers; i++)
        {
            hidden = Block(g, config, $"distilbert.transformer.layer.{i}", hidden, mask);
        }

        // first token → pre_classifier → ReLU → classifier.
        var first = g.FirstToken(hidden, floatMask);
        var pre = w.Node("Relu", "pre_classifier_relu", [g.Linear(first, "pre_classifier")]);
        return g.Linear(pre, "classifier");
    }

    /// <summary>One post-LN layer, as DistilBERT's TransformerBlock.</summary>
    private static string Block(OnnxLayers g, TransformerConfig config, string prefix, string hidden, AttentionMask mask)
    {
        var attention = prefix + ".attention";
        var qkv = BertOnnx.PackedProjection(g, hidden, attention, [attention + ".q_lin", attention + ".k_lin", attention + ".v_lin"]);
        var context = g.Attention(qkv, attention, config.HiddenSize, config.NumHeads, mask, 1 / Math.Sqrt(config.HeadDim));
        var attended = g.LayerNorm(
            g.Writer.Node("Add", prefix + ".attention_residual", [g.Linear(context, attention + ".out_lin"), hidden]),
            prefix + ".sa_layer_norm", config.LayerNormEps);
        var inner = g.Activate(g.Linear(attended, prefix + ".ffn.lin1"), prefix + ".ffn.act", config.HiddenAct);
        return g.LayerNorm(
            g.Writer.Node("Add", prefix + ".ffn_residual", [g.Linear(inner, prefix + ".ffn.lin2"), attended]),
            prefix + ".output_layer_norm", config.LayerNormEps);
    }
}
