// Writes Modeling/Bert.cs and Modeling/Roberta.cs (BertForSequenceClassification, RobertaForSequenceClassification) as ONNX.
using MLNetTransformerExtensions.Modeling;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Export;

/// <summary>BERT and RoBERTa sequence classifiers as ONNX graphs, block by block as <c>Bert.cs</c> runs them.</summary>
internal static class BertOnnx
{
    /// <summary>Writes the graph and returns the logits' value name.</summary>
    /// <param name="g">The graph builder over the model's state dict.</param>
    /// <param name="config">A BERT or RoBERTa config.</param>
    /// <param name="inputIds">The input_ids input.</param>
    /// <param name="attentionMask">The attention_mask input.</param>
    /// <param name="tokenTypeIds">The token_type_ids input (BERT), or null (RoBERTa: every token is type 0).</param>
    public static string Write(OnnxLayers g, TransformerConfig config, string inputIds, string attentionMask, string? tokenTypeIds)
    {
        var roberta = config.Family == ModelFamily.Roberta;
        var body = roberta ? "roberta" : "bert";
        var floatMask = g.FloatMask(attentionMask);
        var hidden = Embeddings(g, config, body + ".embeddings", inputIds, attentionMask, tokenTypeIds);
        var mask = g.EncoderMask(attentionMask, floatMask);
        for (var i = 0; i < config.NumLayers; i++)
        {
            hidden = Layer(g, config, $"{body}.encoder.layer.{i}", hidden, mask);
        }

        var first = g.FirstToken(hidden, floatMask);
        if (roberta)
        {
            // RobertaClassificationHead: dense → tanh → out_proj on the first token.
            var dense = g.Writer.Node("Tanh", "classifier.dense_tanh", [g.Linear(first, "classifier.dense")]);
            return g.Linear(dense, "classifier.out_proj");
        }

        // BertPooler (dense + tanh on the first token), then the classifier.
        var pooled = g.Writer.Node("Tanh", "bert.pooler_output", [g.Linear(first, "bert.pooler.dense")]);
        return g.Linear(pooled, "classifier");
    }

    /// <summary>Word + position + token-type embeddings, LayerNorm, as BertEmbeddings.</summary>
    private static string Embeddings(OnnxLayers g, TransformerConfig config, string prefix, string inputIds, string attentionMask, string? tokenTypeIds)
    {
        var w = g.Writer;
        string positions;
        if (config.Family == ModelFamily.Roberta)
        {
            // RoBERTa counts positions from padding_idx + 1 over real tokens; padding keeps padding_idx.
            var pad = config.PadTokenId ?? 1;
            var isPad = w.Node("Equal", "is_padding", [inputIds, w.Int64s([pad], scalar: true)]);
            var real = w.Node("Cast", "is_real", [w.Node("Not", "is_real_bool", [isPad])], OnnxGraphWriter.Int("to", (long)Onnx.TensorProto.Types.DataType.Int64));
            var counted = w.Node("CumSum", "real_token_count", [real, w.Int64s([1], scalar: true)]);
            positions = w.Node("Add", "position_ids", [w.Node("Mul", "real_token_positions", [counted, real]), w.Int64s([pad], scalar: true)]);
        }
        else
        {
            positions = g.RealTokenPositions(attentionMask);
        }

        var words = w.Node("Gather", prefix + ".word_embeddings", [w.Weight(prefix + ".word_embeddings.weight", g[prefix + ".word_embeddings.weight"]), inputIds]);
        var sum = w.Node("Add", prefix + ".with_positions", [words, w.Node("Gather", prefix + ".position_embeddings", [w.Weight(prefix + ".position_embeddings.weight", g[prefix + ".position_embeddings.weight"]), positions])]);
        var typeTable = g[prefix + ".token_type_embeddings.weight"];
        if (tokenTypeIds is not null)
        {
            sum = w.Node("Add", prefix + ".with_token_types", [sum, w.Node("Gather", prefix + ".token_type_embeddings", [w.Weight(prefix + ".token_type_embeddings.weight", typeTable), tokenTypeIds])]);
        }
        else
        {
            // Every token is of type 0: its row is one constant vector.
            using var typeZero = typeTable[0];
            sum = w.Node("Add", prefix + ".with_token_types", [sum, w.Weight(prefix + ".token_type_embeddings.type_0", typeZero)]);
        }

        return g.LayerNorm(sum, prefix + ".LayerNorm", config.LayerNormEps);
    }

    /// <summary>One post-LN encoder layer, as BertLayer: attention with its residual, then the feed-forward with its own.</summary>
    private static string Layer(OnnxLayers g, TransformerConfig config, string prefix, string hidden, AttentionMask mask)
    {
        var self = prefix + ".attention.self";
        var qkv = PackedProjection(g, hidden, self, [self + ".query", self + ".key", self + ".value"]);
        var context = g.Attention(qkv, self, config.HiddenSize, config.NumHeads, mask, 1 / Math.Sqrt(config.HeadDim));
        var attended = g.LayerNorm(
            g.Writer.Node("Add", prefix + ".attention.output.residual", [g.Linear(context, prefix + ".attention.output.dense"), hidden]),
            prefix + ".attention.output.LayerNorm", config.LayerNormEps);
        var inner = g.Activate(g.Linear(attended, prefix + ".intermediate.dense"), prefix + ".intermediate.act", config.HiddenAct);
        return g.LayerNorm(
            g.Writer.Node("Add", prefix + ".output.residual", [g.Linear(inner, prefix + ".output.dense"), attended]),
            prefix + ".output.LayerNorm", config.LayerNormEps);
    }

    /// <summary>
    /// Query, key and value projections as one (H, 3H) MatMul: one pass over the input instead of three (and one
    /// activation quantization when int8).
    /// </summary>
    internal static string PackedProjection(OnnxLayers g, string hidden, string name, string[] prefixes)
    {
        using var scope = NewDisposeScope();
        var weight = cat([.. prefixes.Select(p => g[p + ".weight"].t())], 1);   // (H, 3H)
        var bias = cat([.. prefixes.Select(p => g[p + ".bias"])], 0);           // (3H)
        return g.Linear(hidden, name + ".qkv", weight, bias);
    }
}
