using MLNetTransformerExtensions.Modeling;
using Onnx;
using static MLNetTransformerExtensions.Export.OnnxGraphWriter;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Export;

/// <summary>
/// The pieces every family's graph is made of, written in standard ONNX operators, as <c>Modeling/Layers</c> holds them
/// for TorchSharp: linear layers (float, or int8 with dynamic activation quantization), LayerNorm, activations,
/// multi-head attention, the additive masks, positions, and picking one token per row.
/// </summary>
/// <remarks>
/// The float32 graph uses only the standard domain at <see cref="OnnxGraphWriter.Opset"/>, so any ONNX runtime can run
/// it; ONNX Runtime's optimizer fuses what it recognises (residual Add + LayerNorm) when it loads it. The int8 graph
/// has no standard fast form (int8 MatMul in the standard domain is a chain of four operators per layer), so it is
/// written for ONNX Runtime: its documented CPU contrib operators DynamicQuantizeMatMul, Gelu/FastGelu and, in
/// encoders, MultiHeadAttention.
/// </remarks>
internal sealed class OnnxLayers
{
    private readonly Dictionary<string, Tensor> _weights;

    /// <summary>Creates the builder over a model's state dict.</summary>
    /// <param name="writer">The graph being written.</param>
    /// <param name="weights">The model's parameters by checkpoint name.</param>
    /// <param name="quantize">Whether linear layers are written as int8 (per output channel) with dynamically quantized inputs.</param>
    public OnnxLayers(OnnxGraphWriter writer, Dictionary<string, Tensor> weights, bool quantize)
    {
        Writer = writer;
        _weights = weights;
        Quantize = quantize;
    }

    public OnnxGraphWriter Writer { get; }

    public bool Quantize { get; }

    /// <summary>The number of linear layers written as int8.</summary>
    public int QuantizedLayers { get; private set; }

    /// <summary>The parameter of this checkpoint name.</summary>
    /// <exception cref="InvalidDataException">The model has no such parameter.</exception>
    public Tensor this[string key] => _weights.TryGetValue(key, out var tensor) ? tensor
        : throw new InvalidDataException($"The model has no parameter '{key}' to export; its parameters start with: {string.Join(", ", _weights.Keys.Take(5))}.");

    /// <summary>
    /// A linear layer <c>x · W + b</c> over the last axis. <paramref name="weight"/> is stored (in, out), as ONNX's
    /// MatMul wants it (transpose nn.Linear's (out, in) before calling).
    /// </summary>
    /// <remarks>
    /// With <see cref="Quantize"/>, W becomes int8 with one scale per output column (symmetric, max |w| → 127: per
    /// channel, because columns of one matrix differ in range by an order of magnitude and one scale would spend most
    /// codes on the widest), written as ONNX Runtime's DynamicQuantizeMatMul: it quantizes x per tensor at run time
    /// (uint8 with a zero point), accumulates in int32, scales back to float and adds the bias in one kernel. Written
    /// as the standard DynamicQuantizeLinear → MatMulInteger → Cast → Mul chain, ONNX Runtime fused the MatMul but left
    /// the bias Add, one more pass over every activation.
    /// </remarks>
    public string Linear(string x, string name, Tensor weight, Tensor? bias)
    {
        if (Quantize)
        {
            var (inputs, outputs) = (weight.shape[0], weight.shape[1]);
            var (codes, scales) = QuantizePerColumn(weight);
            var quantizedWeight = Writer.Int8s(name + ".weight_int8", codes, [inputs, outputs]);
            var columnScales = Writer.Floats(name + ".weight_scale", scales, [outputs]);
            QuantizedLayers++;
            return Writer.MicrosoftNode("DynamicQuantizeMatMul", name, [x, quantizedWeight, columnScales, string.Empty, bias is null ? string.Empty : Writer.Weight(name + ".bias", bias)]);
        }

        var y = Writer.Node("MatMul", name + "_matmul", [x, Writer.Weight(name + ".weight", weight)]);
        return bias is null ? y : Writer.Node("Add", name, [y, Writer.Weight(name + ".bias", bias)]);
    }

    /// <summary>An nn.Linear layer by checkpoint prefix (<c>prefix.weight</c> (out, in), <c>prefix.bias</c> if present).</summary>
    public string Linear(string x, string prefix)
    {
        using var transposed = this[prefix + ".weight"].t();
        return Linear(x, prefix, transposed, _weights.GetValueOrDefault(prefix + ".bias"));
    }

    /// <summary>LayerNorm over the last axis with the checkpoint's gain and bias (<c>prefix.weight</c>, <c>prefix.bias</c>).</summary>
    public string LayerNorm(string x, string prefix, double epsilon) =>
        Writer.Node("LayerNormalization", prefix, [x, Writer.Weight(prefix + ".weight", this[prefix + ".weight"]), Writer.Weight(prefix + ".bias", this[prefix + ".bias"])],
            Int("axis", -1), FloatAttribute("epsilon", (float)epsilon));

    /// <summary>The config's activation: exact GELU through Erf, the tanh approximation, ReLU or SiLU.</summary>
    /// <remarks>
    /// The int8 graph, already ONNX Runtime's, takes its one-kernel Gelu and FastGelu (the tanh form): written from
    /// Erf, Mul and Add, the activation was five passes over the widest activations of the layer, and ONNX Runtime's
    /// optimizer did not fuse them back.
    /// </remarks>
    public string Activate(string x, string name, Activation activation)
    {
        if (Quantize && activation is Activation.Gelu or Activation.GeluTanh)
        {
            return Writer.MicrosoftNode(activation == Activation.Gelu ? "Gelu" : "FastGelu", name, [x]);
        }

        switch (activation)
        {
            case Activation.Gelu:
                {
                    // 0.5 · x · (1 + erf(x / √2))
                    var erf = Writer.Node("Erf", name + "_erf", [Writer.Node("Mul", name + "_scaled", [x, Writer.Float((float)(1 / Math.Sqrt(2)))])]);
                    var gate = Writer.Node("Add", name + "_gate", [erf, Writer.Float(1f)]);
                    return Writer.Node("Mul", name, [Writer.Node("Mul", name + "_half", [x, Writer.Float(0.5f)]), gate]);
                }

            case Activation.GeluTanh:
                {
                    // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
                    var cube = Writer.Node("Mul", name + "_cube", [Writer.Node("Mul", name + "_square", [x, x]), x]);
                    var inner = Writer.Node("Add", name + "_inner", [x, Writer.Node("Mul", name + "_cubic", [cube, Writer.Float(0.044715f)])]);
                    var tanh = Writer.Node("Tanh", name + "_tanh", [Writer.Node("Mul", name + "_scaled", [inner, Writer.Float((float)Math.Sqrt(2 / Math.PI))])]);
                    var gate = Writer.Node("Add", name + "_gate", [tanh, Writer.Float(1f)]);
                    return Writer.Node("Mul", name, [Writer.Node("Mul", name + "_half", [x, Writer.Float(0.5f)]), gate]);
                }

            case Activation.Relu:
                return Writer.Node("Relu", name, [x]);
            default:
                return Writer.Node("Mul", name, [x, Writer.Node("Sigmoid", name + "_sigmoid", [x])]);
        }
    }

    /// <summary>
    /// Multi-head attention from packed projections <paramref name="qkv"/> (B, T, 3H): scores scaled by
    /// <paramref name="scale"/>, masked by <paramref name="mask"/>, softmax, weighted values; returns (B, T, H).
    /// </summary>
    /// <remarks>
    /// With a key padding mask (the int8 graph of an encoder) the heads are ONNX Runtime's MultiHeadAttention, one
    /// kernel for what the standard graph spells as Split's outputs reshaped, transposed, multiplied, masked and
    /// soft-maxed: those element-wise passes took more of the int8 graph's time than its MatMuls. It blocks padded keys
    /// with a large finite negative instead of the most negative float, which gives them the same zero weight.
    /// </remarks>
    public string Attention(string qkv, string name, int hidden, int heads, AttentionMask mask, double scale)
    {
        var headDim = hidden / heads;
        var parts = Writer.Nodes("Split", [name + ".query", name + ".key", name + ".value"], [qkv, Writer.Int64s([hidden, hidden, hidden])], Int("axis", 2));
        if (mask.IsKeyPadding)
        {
            return Writer.MicrosoftNode("MultiHeadAttention", name + ".context", [parts[0], parts[1], parts[2], string.Empty, mask.Name], Int("num_heads", heads), FloatAttribute("scale", (float)scale));
        }

        var headShape = Writer.Int64s([0, 0, heads, headDim]);
        // (B, T, H) -> (B, T, nh, hs)
        string Heads(string x, string suffix) => Writer.Node("Reshape", x + suffix, [x, headShape]);
        var query = Writer.Node("Transpose", name + ".query_heads", [Heads(Writer.Node("Mul", name + ".query_scaled", [parts[0], Writer.Float((float)scale)]), "_split")], Ints("perm", 0, 2, 1, 3)); // (B, nh, T, hs)
        var key = Writer.Node("Transpose", name + ".key_heads", [Heads(parts[1], "_split")], Ints("perm", 0, 2, 3, 1));       // (B, nh, hs, T)
        var value = Writer.Node("Transpose", name + ".value_heads", [Heads(parts[2], "_split")], Ints("perm", 0, 2, 1, 3));   // (B, nh, T, hs)
        var scores = Writer.Node("Add", name + ".scores", [Writer.Node("MatMul", name + ".dot", [query, key]), mask.Name]);    // (B, nh, T, T)
        var probabilities = Writer.Node("Softmax", name + ".probabilities", [scores], Int("axis", -1));
        var context = Writer.Node("MatMul", name + ".context_heads", [probabilities, value]);                                    // (B, nh, T, hs)
        // (B, nh, T, hs) -> (B, T, nh, hs) -> (B, T, H)
        var merged = Writer.Node("Transpose", name + ".context_merged", [context], Ints("perm", 0, 2, 1, 3));
        return Writer.Node("Reshape", name + ".context", [merged, Writer.Int64s([0, 0, hidden])]);
    }

    /// <summary>The attention mask as float (B, T).</summary>
    public string FloatMask(string attentionMask) =>
        Writer.Node("Cast", "attention_mask_float", [attentionMask], Int("to", (long)TensorProto.Types.DataType.Float));

    /// <summary>
    /// The mask for bidirectional attention: additive, (B, 1, 1, T), 0 for real keys and the most negative float for
    /// padding (the value TorchSharp's mask uses, so padded batches match it); in the int8 graph, the (B, T) int32 key
    /// padding mask ONNX Runtime's MultiHeadAttention reads.
    /// </summary>
    public AttentionMask EncoderMask(string attentionMask, string floatMask)
    {
        if (Quantize)
        {
            return new(Writer.Node("Cast", "key_padding_mask", [attentionMask], Int("to", (long)TensorProto.Types.DataType.Int32)), IsKeyPadding: true);
        }

        var padding = Writer.Node("Sub", "padding", [Writer.Float(1f), floatMask]);
        var additive = Writer.Node("Mul", "padding_additive", [padding, Writer.Float(float.MinValue)]);
        return new(Writer.Node("Unsqueeze", "encoder_attention_mask", [additive, Writer.Int64s([1, 2])]), IsKeyPadding: false); // (B, 1, 1, T)
    }

    /// <summary>
    /// The additive mask for causal attention over a padded batch, (B, 1, T, T): a key is blocked when it comes after
    /// the query or is padding. A padded query's row blocks everything, and stays finite, as in TorchSharp.
    /// </summary>
    public AttentionMask DecoderMask(string attentionMask, string positions)
    {
        // positions: 0..T-1 (T). future[q, k] = k > q.
        var keys = Writer.Node("Unsqueeze", "causal_keys", [positions, Writer.Int64s([0])]);      // (1, T)
        var queries = Writer.Node("Unsqueeze", "causal_queries", [positions, Writer.Int64s([1])]); // (T, 1)
        var future = Writer.Node("Greater", "causal_future", [keys, queries]);                       // (T, T)
        var padding = Writer.Node("Equal", "padding_keys", [attentionMask, Writer.Int64s([0], scalar: true)]);
        var paddingKeys = Writer.Node("Unsqueeze", "padding_keys_4d", [padding, Writer.Int64s([1, 2])]); // (B, 1, 1, T)
        var blocked = Writer.Node("Or", "attention_blocked", [future, paddingKeys]);                      // (B, 1, T, T)
        return new(Writer.Node("Where", "decoder_attention_mask", [blocked, Writer.Float(float.MinValue), Writer.Float(0f)]), IsKeyPadding: false);
    }

    /// <summary>0, 1, …, T-1 for the sequence axis of <paramref name="inputIds"/>.</summary>
    public string SequencePositions(string inputIds)
    {
        var shape = Writer.Node("Shape", "input_shape", [inputIds]);
        var length = Writer.Node("Gather", "sequence_length", [shape, Writer.Int64s([1], scalar: true)], Int("axis", 0));
        return Writer.Node("Range", "sequence_positions", [Writer.Int64s([0], scalar: true), length, Writer.Int64s([1], scalar: true)]);
    }

    /// <summary>Positions that count real tokens (0, 1, … from each row's first one), so left padding changes nothing: cumsum(mask) - 1, at least 0.</summary>
    public string RealTokenPositions(string attentionMask)
    {
        var counted = Writer.Node("CumSum", "real_token_count", [attentionMask, Writer.Int64s([1], scalar: true)]);
        var positions = Writer.Node("Sub", "real_token_positions_raw", [counted, Writer.Int64s([1], scalar: true)]);
        return Writer.Node("Max", "position_ids", [positions, Writer.Int64s([0], scalar: true)]);
    }

    /// <summary>hidden[b, first real token of b], (B, T, H) -> (B, H): position 0 unless the row is left-padded.</summary>
    public string FirstToken(string hidden, string floatMask)
    {
        var index = Writer.Node("ArgMax", "first_token_index", [floatMask], Int("axis", 1), Int("keepdims", 1)); // (B, 1)
        return Writer.Node("GatherND", "first_token", [hidden, index], Int("batch_dims", 1));
    }

    /// <summary>hidden[b, last real token of b], (B, T, H) -> (B, H), whichever side is padded.</summary>
    public string LastToken(string hidden, string floatMask, string positions)
    {
        var asFloat = Writer.Node("Cast", "sequence_positions_float", [positions], Int("to", (long)TensorProto.Types.DataType.Float));
        var weighted = Writer.Node("Mul", "real_positions", [floatMask, asFloat]); // (B, T)
        var index = Writer.Node("ArgMax", "last_token_index", [weighted], Int("axis", 1), Int("keepdims", 1)); // (B, 1)
        return Writer.Node("GatherND", "last_token", [hidden, index], Int("batch_dims", 1));
    }

    /// <summary>
    /// Symmetric int8 codes and one scale per output column of a (in, out) weight: scale = max |w| / 127, code =
    /// round(w / scale). A zero column gets scale 1 (all codes 0).
    /// </summary>
    internal static (sbyte[] Codes, float[] Scales) QuantizePerColumn(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        var maxAbs = w.abs().amax([0]);                                          // (out)
        var scales = where(maxAbs.gt(0), maxAbs / 127f, ones_like(maxAbs));
        var codes = (w / scales.unsqueeze(0)).round().clamp(-127, 127).to(ScalarType.Int8).contiguous();
        return (codes.data<sbyte>().ToArray(), scales.contiguous().data<float>().ToArray());
    }
}

/// <summary>What attention is masked with: an additive float mask, or a (B, T) int32 key padding mask (1 for real keys).</summary>
/// <param name="Name">The mask's value name.</param>
/// <param name="IsKeyPadding">Whether it is the key padding mask of ONNX Runtime's MultiHeadAttention.</param>
internal readonly record struct AttentionMask(string Name, bool IsKeyPadding);
