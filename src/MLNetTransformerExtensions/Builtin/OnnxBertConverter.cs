using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Onnx;
using TorchSharp;

namespace MLNetTransformerExtensions.Builtin;

/// <summary>
/// Turns an ONNX export of HuggingFace's <c>BertModel</c> back into its HuggingFace config and state dict.
/// </summary>
/// <remarks>
/// PyTorch's exporter keeps HuggingFace's names for the embeddings, biases and LayerNorms, but writes each Linear
/// weight as an unnamed initializer stored [in, out] and fed to a MatMul; the Add after that MatMul takes the named
/// bias <c>X.bias</c>, so the weight is <c>X.weight</c>, transposed. The sizes come from the tensors; the head count,
/// LayerNorm epsilon and activation, which no tensor shows, come from the graph's nodes. Anything the converter does
/// not recognise is an error rather than a guess: a float initializer that maps to no BERT weight, a weight that is
/// missing or of the wrong shape, layers that disagree.
/// </remarks>
internal static partial class OnnxBertConverter
{
    /// <summary>The converted model.</summary>
    /// <param name="Config">The HuggingFace config.json.</param>
    /// <param name="Tensors">The state dict by HuggingFace name (float32, CPU); the caller disposes them.</param>
    /// <param name="HasPooler">Whether the graph has BERT's pooler (a checkpoint without one leaves it to be initialised).</param>
    public sealed record Result(JsonObject Config, Dictionary<string, torch.Tensor> Tensors, bool HasPooler);

    private const string ExporterPrefix = "bert.";

    /// <summary>Converts the graph.</summary>
    /// <param name="model">The parsed ONNX model.</param>
    /// <param name="padTokenId">The padding token's id in the vocabulary.</param>
    /// <param name="source">Names the graph in error messages.</param>
    /// <exception cref="InvalidDataException">The graph is not a BERT encoder this converter can map; the message says what and where.</exception>
    public static Result Convert(ModelProto model, int padTokenId, string source)
    {
        var graph = new OnnxGraph(model.Graph ?? throw Fail(source, "the model has no graph."));
        var mapped = MapWeights(graph, source);
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, weight) in mapped.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                tensors[name] = ToTensor(weight.Tensor, weight.Transpose, name, source);
            }

            var shapes = tensors.ToDictionary(t => t.Key, t => t.Value.shape, StringComparer.Ordinal);
            var sizes = Sizes(shapes, source);
            CheckComplete(shapes, sizes, source);
            var heads = NumHeads(graph, mapped, sizes, source);
            var eps = LayerNormEpsilon(graph, mapped, sizes.Layers, source);
            var activation = HiddenActivation(graph, mapped, sizes.Layers, source);
            CheckAbsolutePositions(graph, mapped, source);

            var config = new JsonObject
            {
                ["architectures"] = new JsonArray("BertModel"),
                ["model_type"] = "bert",
                ["vocab_size"] = sizes.Vocab,
                ["hidden_size"] = sizes.Hidden,
                ["num_hidden_layers"] = sizes.Layers,
                ["num_attention_heads"] = heads,
                ["intermediate_size"] = sizes.Intermediate,
                ["hidden_act"] = activation,
                ["hidden_dropout_prob"] = 0.1,
                ["attention_probs_dropout_prob"] = 0.1,
                ["max_position_embeddings"] = sizes.Positions,
                ["type_vocab_size"] = sizes.TokenTypes,
                ["initializer_range"] = 0.02,
                ["layer_norm_eps"] = eps,
                ["pad_token_id"] = padTokenId,
                ["position_embedding_type"] = "absolute",
                ["use_cache"] = true,
                ["classifier_dropout"] = null,
                ["torch_dtype"] = "float32",
            };
            return new Result(config, tensors, tensors.ContainsKey("pooler.dense.weight"));
        }
        catch
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }

            throw;
        }
    }

    private sealed record Weight(TensorProto Tensor, bool Transpose);

    private sealed record ModelSizes(int Vocab, int Hidden, int Positions, int TokenTypes, int Layers, int Intermediate);

    [GeneratedRegex(@"^(embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight|embeddings\.LayerNorm\.(weight|bias)|encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.(weight|bias)|encoder\.layer\.\d+\.(attention\.output|output)\.LayerNorm\.(weight|bias)|pooler\.dense\.(weight|bias))$")]
    private static partial Regex BertParameter();

    [GeneratedRegex(@"(^|\.)(query|key|value|dense)\.weight$")]
    private static partial Regex LinearWeight();

    [GeneratedRegex(@"^encoder\.layer\.(\d+)\.")]
    private static partial Regex LayerIndex();

    /// <summary>Gives every float initializer its HuggingFace name, and says which are Linear weights stored [in, out].</summary>
    private static Dictionary<string, Weight> MapWeights(OnnxGraph graph, string source)
    {
        var mapped = new Dictionary<string, Weight>(StringComparer.Ordinal);
        foreach (var initializer in graph.Initializers.Values)
        {
            var name = HuggingFaceName(initializer.Name);
            if (initializer.DataType != OnnxGraph.FloatType)
            {
                if (BertParameter().IsMatch(name))
                {
                    throw Fail(source, $"weight '{initializer.Name}' has ONNX data type {initializer.DataType}; only float32 weights are converted.");
                }

                continue; // shapes, indices and the position-id buffer: graph constants, not weights
            }

            var (target, transpose) = NameByUse(graph, initializer, name, source);
            if (!mapped.TryAdd(target, new Weight(initializer, transpose)))
            {
                throw Fail(source, $"two initializers map to '{target}' ('{mapped[target].Tensor.Name}' and '{initializer.Name}').");
            }
        }

        return mapped;
    }

    private static string HuggingFaceName(string name) =>
        name.StartsWith(ExporterPrefix, StringComparison.Ordinal) ? name[ExporterPrefix.Length..] : name;

    private static (string Name, bool Transpose) NameByUse(OnnxGraph graph, TensorProto initializer, string name, string source)
    {
        var uses = graph.ConsumersOf(initializer.Name);
        var product = uses.FirstOrDefault(n => n.OpType is "MatMul" or "Gemm" && n.Input.Count >= 2 && n.Input[1] == initializer.Name);
        if (product is null)
        {
            if (BertParameter().IsMatch(name) && !LinearWeight().IsMatch(name))
            {
                return (name, false);
            }

            var users = uses.Count == 0 ? "no node" : string.Join(", ", uses.Select(n => $"{n.OpType} '{n.Name}'"));
            throw Fail(source, BertParameter().IsMatch(name)
                ? $"Linear weight '{initializer.Name}' is used by {users}, not as the weight of a MatMul or Gemm, so its orientation is unknown."
                : $"float initializer '{initializer.Name}' [{string.Join(", ", initializer.Dims)}] is used by {users} and maps to no BERT weight.");
        }

        if (uses.Count != 1 || initializer.Dims.Count != 2)
        {
            throw Fail(source, $"initializer '{initializer.Name}' [{string.Join(", ", initializer.Dims)}] feeds {product.OpType} '{product.Name}' but is not a 2-D weight used once.");
        }

        string bias;
        bool transpose;
        if (product.OpType == "MatMul")
        {
            // A Linear layer exported as MatMul(x, W[in, out]) + b: the one Add consuming the product holds the bias.
            var adds = graph.ConsumersOf(product.Output[0]);
            if (adds is not [{ OpType: "Add" } add])
            {
                throw Fail(source, $"the product of MatMul '{product.Name}' with '{initializer.Name}' is not followed by exactly one Add with a bias.");
            }

            bias = add.Input.FirstOrDefault(i => i != product.Output[0] && graph.Initializers.ContainsKey(i)) ?? string.Empty;
            transpose = true;
        }
        else
        {
            // Gemm(x, W, b) computes alpha·x·op(W) + beta·b; transB = 1 means W is stored [out, in], HuggingFace's order.
            if (OnnxGraph.IntAttribute(product, "transA", 0) != 0 || OnnxGraph.FloatAttribute(product, "alpha", 1f) != 1f || OnnxGraph.FloatAttribute(product, "beta", 1f) != 1f || product.Input.Count < 3)
            {
                throw Fail(source, $"Gemm '{product.Name}' is not a plain Linear layer (it needs transA = 0, alpha = beta = 1 and a bias).");
            }

            bias = product.Input[2];
            transpose = OnnxGraph.IntAttribute(product, "transB", 0) == 0;
        }

        var biasName = HuggingFaceName(bias);
        var derived = biasName.EndsWith(".bias", StringComparison.Ordinal) ? biasName[..^".bias".Length] + ".weight" : string.Empty;
        if (!BertParameter().IsMatch(derived) || !LinearWeight().IsMatch(derived))
        {
            throw Fail(source, $"the weight '{initializer.Name}' of {product.OpType} '{product.Name}' is added to '{bias}', which is not the bias of a BERT Linear layer, so the weight cannot be named.");
        }

        if (BertParameter().IsMatch(name) && name != derived)
        {
            throw Fail(source, $"initializer '{initializer.Name}' is named as '{name}' but is the weight of the layer whose bias is '{bias}'.");
        }

        return (derived, transpose);
    }

    private static torch.Tensor ToTensor(TensorProto proto, bool transpose, string name, string source)
    {
        if (proto.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw Fail(source, $"weight '{proto.Name}' ({name}) is stored outside the model file; only self-contained graphs are converted.");
        }

        var tensor = torch.empty(proto.Dims.ToArray(), torch.ScalarType.Float32);
        if (!OnnxGraph.TryCopyFloats(proto, tensor.bytes))
        {
            tensor.Dispose();
            throw Fail(source, $"weight '{proto.Name}' ({name}) holds {Math.Max(proto.RawData.Length / 4, proto.FloatData.Count)} values, but its shape [{string.Join(", ", proto.Dims)}] needs {tensor.numel()}.");
        }

        if (!transpose)
        {
            return tensor;
        }

        using (tensor)
        {
            return tensor.t().contiguous();
        }
    }

    private static ModelSizes Sizes(Dictionary<string, long[]> shapes, string source)
    {
        long[] Shape(string name) => shapes.TryGetValue(name, out var shape) ? shape
            : throw Fail(source, $"the graph has no '{name}'.");

        var words = Shape("embeddings.word_embeddings.weight");
        var positions = Shape("embeddings.position_embeddings.weight");
        var types = Shape("embeddings.token_type_embeddings.weight");
        var layers = shapes.Keys.Select(k => LayerIndex().Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max() + 1;
        if (layers == 0)
        {
            throw Fail(source, "the graph has no encoder layers (no 'encoder.layer.N.*' weights).");
        }

        var intermediate = Shape("encoder.layer.0.intermediate.dense.weight");
        if (words.Length != 2 || positions.Length != 2 || types.Length != 2 || intermediate.Length != 2)
        {
            throw Fail(source, "the embedding tables and the intermediate weight must be 2-D.");
        }

        return new ModelSizes(
            Vocab: (int)words[0], Hidden: (int)words[1], Positions: (int)positions[0], TokenTypes: (int)types[0],
            Layers: layers, Intermediate: (int)intermediate[0]);
    }

    /// <summary>Every BertModel weight must be there with the shape the sizes give, and nothing else may be.</summary>
    private static void CheckComplete(Dictionary<string, long[]> shapes, ModelSizes sizes, string source)
    {
        long h = sizes.Hidden, i = sizes.Intermediate;
        var expected = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            ["embeddings.word_embeddings.weight"] = [sizes.Vocab, h],
            ["embeddings.position_embeddings.weight"] = [sizes.Positions, h],
            ["embeddings.token_type_embeddings.weight"] = [sizes.TokenTypes, h],
            ["embeddings.LayerNorm.weight"] = [h],
            ["embeddings.LayerNorm.bias"] = [h],
        };
        for (int layer = 0; layer < sizes.Layers; layer++)
        {
            var p = $"encoder.layer.{layer}.";
            foreach (var linear in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                expected[p + linear + ".weight"] = [h, h];
                expected[p + linear + ".bias"] = [h];
            }

            expected[p + "attention.output.LayerNorm.weight"] = [h];
            expected[p + "attention.output.LayerNorm.bias"] = [h];
            expected[p + "intermediate.dense.weight"] = [i, h];
            expected[p + "intermediate.dense.bias"] = [i];
            expected[p + "output.dense.weight"] = [h, i];
            expected[p + "output.dense.bias"] = [h];
            expected[p + "output.LayerNorm.weight"] = [h];
            expected[p + "output.LayerNorm.bias"] = [h];
        }

        if (shapes.ContainsKey("pooler.dense.weight") || shapes.ContainsKey("pooler.dense.bias"))
        {
            expected["pooler.dense.weight"] = [h, h];
            expected["pooler.dense.bias"] = [h];
        }

        var missing = expected.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        if (missing.Count > 0)
        {
            throw Fail(source, $"the graph lacks {missing.Count} BERT weight(s): {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}.");
        }

        var extra = shapes.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (extra.Count > 0)
        {
            throw Fail(source, $"weights outside a {sizes.Layers}-layer BertModel: {string.Join(", ", extra)}.");
        }

        foreach (var (name, shape) in expected)
        {
            if (!shapes[name].SequenceEqual(shape))
            {
                throw Fail(source, $"'{name}' has shape [{string.Join(", ", shapes[name])}], but a BertModel with hidden size {h} and intermediate size {i} needs [{string.Join(", ", shape)}].");
            }
        }
    }

    /// <summary>The Add that applies a named bias (HuggingFace name), or null.</summary>
    private static NodeProto? BiasAdd(OnnxGraph graph, Dictionary<string, Weight> mapped, string bias) =>
        graph.ConsumersOf(mapped[bias].Tensor.Name).FirstOrDefault(n => n.OpType == "Add");

    /// <summary>
    /// The head count is in the Reshape that splits each query, key and value projection into
    /// [batch, sequence, heads, head_dim]; every projection of every layer must agree.
    /// </summary>
    private static int NumHeads(OnnxGraph graph, Dictionary<string, Weight> mapped, ModelSizes sizes, string source)
    {
        int? heads = null;
        for (int layer = 0; layer < sizes.Layers; layer++)
        {
            foreach (var projection in new[] { "query", "key", "value" })
            {
                var bias = $"encoder.layer.{layer}.attention.self.{projection}.bias";
                var add = BiasAdd(graph, mapped, bias)
                    ?? throw Fail(source, $"no Add applies '{bias}', so the attention heads cannot be found.");
                var reshape = graph.ConsumersOf(add.Output[0]).FirstOrDefault(n => n.OpType == "Reshape" && n.Input[0] == add.Output[0])
                    ?? throw Fail(source, $"the {projection} projection of layer {layer} is not split into heads by a Reshape.");
                var shape = graph.ShapeOperand(reshape.Input[1]);
                if (shape is not [_, _, { } count, { } headDim] || count <= 0 || count * headDim != sizes.Hidden)
                {
                    throw Fail(source, $"Reshape '{reshape.Name}' of layer {layer}'s {projection} does not give [batch, sequence, heads, head_dim] with heads × head_dim = {sizes.Hidden} (found [{(shape is null ? "not constant" : string.Join(", ", shape.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "?")))}]).");
                }

                if (heads is not null && heads != count)
                {
                    throw Fail(source, $"layers disagree on the number of attention heads ({heads} and {count}, at '{reshape.Name}').");
                }

                heads = (int)count;
            }
        }

        return heads!.Value;
    }

    /// <summary>
    /// Epsilon of every LayerNorm: a LayerNormalization node's attribute, or, where the exporter spelled the norm out
    /// as (x − mean) / sqrt(var + ε) · weight + bias, the constant added before the Sqrt. All must agree.
    /// </summary>
    private static double LayerNormEpsilon(OnnxGraph graph, Dictionary<string, Weight> mapped, int layers, string source)
    {
        var norms = new List<string> { "embeddings.LayerNorm" };
        for (int layer = 0; layer < layers; layer++)
        {
            norms.Add($"encoder.layer.{layer}.attention.output.LayerNorm");
            norms.Add($"encoder.layer.{layer}.output.LayerNorm");
        }

        float? epsilon = null;
        foreach (var norm in norms)
        {
            var weight = mapped[norm + ".weight"].Tensor.Name;
            float found = graph.ConsumersOf(weight).FirstOrDefault() switch
            {
                { OpType: "LayerNormalization" } node => OnnxGraph.FloatAttribute(node, "epsilon", 1e-5f),
                { OpType: "Mul" } scale => SpelledOutEpsilon(graph, scale, weight)
                    ?? throw Fail(source, $"the LayerNorm '{norm}' is not (x − mean) / sqrt(var + ε) · weight + bias, so its epsilon cannot be read."),
                var other => throw Fail(source, $"the LayerNorm weight '{norm}.weight' is used by {other?.OpType ?? "no node"}, not a LayerNormalization or Mul."),
            };

            if (epsilon is not null && epsilon != found)
            {
                throw Fail(source, $"the LayerNorms disagree on epsilon ({epsilon} and {found}, at '{norm}').");
            }

            epsilon = found;
        }

        // The graph stores float32: 1e-12 comes back as 9.9999999600419720e-13; its shortest spelling is what was meant.
        return double.Parse(epsilon!.Value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    private static float? SpelledOutEpsilon(OnnxGraph graph, NodeProto scale, string weight)
    {
        var normalised = scale.Input.First(i => i != weight);
        if (graph.ProducerOf(normalised) is not { OpType: "Div" } divide
            || graph.ProducerOf(divide.Input[1]) is not { OpType: "Sqrt" } root
            || graph.ProducerOf(root.Input[0]) is not { OpType: "Add" } add)
        {
            return null;
        }

        return add.Input.Select(graph.FloatScalar).FirstOrDefault(v => v is not null);
    }

    /// <summary>
    /// The feed-forward activation, from the nodes between the intermediate projection's bias and the output
    /// projection: an Erf is exact GELU, a Tanh the tanh approximation, a lone Relu ReLU.
    /// </summary>
    private static string HiddenActivation(OnnxGraph graph, Dictionary<string, Weight> mapped, int layers, string source)
    {
        string? activation = null;
        for (int layer = 0; layer < layers; layer++)
        {
            var bias = $"encoder.layer.{layer}.intermediate.dense.bias";
            var add = BiasAdd(graph, mapped, bias) ?? throw Fail(source, $"no Add applies '{bias}'.");
            var ops = ActivationNodes(graph, add.Output[0]);
            var found = ops.FirstOrDefault(n => n.OpType == "Gelu") is { } gelu
                ? OnnxGraph.StringAttribute(gelu, "approximate") == "tanh" ? "gelu_new" : "gelu"
                : ops.Any(n => n.OpType == "Erf") ? "gelu"
                : ops.Any(n => n.OpType == "Tanh") ? "gelu_new"
                : ops is [{ OpType: "Relu" }] ? "relu"
                : throw Fail(source, $"the activation of layer {layer} ({string.Join(", ", ops.Select(n => n.OpType))}) is not GELU or ReLU.");
            if (activation is not null && activation != found)
            {
                throw Fail(source, $"layers disagree on the activation ({activation} and {found}, at layer {layer}).");
            }

            activation = found;
        }

        return activation!;
    }

    /// <summary>The nodes reachable from a value before the next MatMul (the output projection).</summary>
    private static List<NodeProto> ActivationNodes(OnnxGraph graph, string start)
    {
        var seen = new HashSet<NodeProto>();
        var queue = new Queue<string>([start]);
        while (queue.Count > 0 && seen.Count < 32)
        {
            foreach (var node in graph.ConsumersOf(queue.Dequeue()))
            {
                if (node.OpType != "MatMul" && seen.Add(node))
                {
                    foreach (var output in node.Output)
                    {
                        queue.Enqueue(output);
                    }
                }
            }
        }

        return [.. seen];
    }

    /// <summary>HuggingFace's absolute positions index the position table with a Gather; anything else is another scheme.</summary>
    private static void CheckAbsolutePositions(OnnxGraph graph, Dictionary<string, Weight> mapped, string source)
    {
        var table = mapped["embeddings.position_embeddings.weight"].Tensor.Name;
        if (!graph.ConsumersOf(table).Any(n => n.OpType == "Gather" && n.Input[0] == table))
        {
            throw Fail(source, "the position table is not looked up by a Gather, so the positions are not BERT's absolute ones.");
        }
    }

    private static InvalidDataException Fail(string source, string problem) =>
        new($"{source}: {problem} Only ONNX exports of HuggingFace's BertModel are converted.");
}
