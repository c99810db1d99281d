using Google.Protobuf;
using MLNetTransformerExtensions.Builtin;
using Onnx;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>
/// The converter derives what no tensor shows from the graph and refuses what it cannot map: each test alters one
/// thing in the real all-MiniLM-L6-v2 graph and expects an error that names it.
/// </summary>
[TestClass]
public sealed class OnnxBertConverterTests
{
    private static ModelProto original = new();

    [ClassInitialize]
    public static void ParseGraph(TestContext context)
    {
        var assembly = BuiltinModelFailureTests.RealAssembly();
        var resource = ManifestResourceFile.Locate(assembly)[BuiltinModels.Describe(BuiltinModels.DefaultName).ModelResource];
        using var stream = ManifestResourceFile.Open(assembly, resource);
        original = ModelProto.Parser.ParseFrom(stream);
    }

    [TestMethod]
    public void TheUnalteredGraphConverts()
    {
        var result = OnnxBertConverter.Convert(original.Clone(), 0, "minilm");
        try
        {
            Assert.IsTrue(result.HasPooler);
            Assert.AreEqual(103, result.Tensors.Count);
            Assert.AreEqual(12, (int)result.Config["num_attention_heads"]!);
            Assert.AreEqual(1e-12, (double)result.Config["layer_norm_eps"]!);
            Assert.AreEqual("gelu", (string)result.Config["hidden_act"]!);
        }
        finally
        {
            Dispose(result);
        }
    }

    [TestMethod]
    public void AnUnmappedFloatInitializerIsRefused()
    {
        var model = original.Clone();
        var graph = model.Graph;
        graph.Initializer.Add(new TensorProto { Name = "mystery", DataType = OnnxGraph.FloatType, Dims = { 4 }, RawData = ByteString.CopyFrom(new byte[16]) });
        graph.Node.Add(new NodeProto { OpType = "Add", Name = "odd_add", Input = { "last_hidden_state", "mystery" }, Output = { "odd" } });
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "'mystery'");
        StringAssert.Contains(e.Message, "maps to no BERT weight");
    }

    [TestMethod]
    public void ALinearWeightWhoseBiasIsNotNamedIsRefused()
    {
        var model = original.Clone();
        Rename(model.Graph, "encoder.layer.0.attention.self.query.bias", "q_bias");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "q_bias");
    }

    [TestMethod]
    public void AMissingWeightIsNamed()
    {
        var model = original.Clone();
        var bias = model.Graph.Initializer.Single(t => t.Name == "encoder.layer.2.output.LayerNorm.bias");
        model.Graph.Initializer.Remove(bias);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "encoder.layer.2.output.LayerNorm.bias");
    }

    [TestMethod]
    public void TheHeadCountComesFromTheReshapeAndMustAgree()
    {
        var model = original.Clone();
        var graph = new OnnxGraph(model.Graph);
        var add = graph.ConsumersOf("encoder.layer.3.attention.self.key.bias").Single(n => n.OpType == "Add");
        var reshape = graph.ConsumersOf(add.Output[0]).Single(n => n.OpType == "Reshape");
        var concat = graph.ProducerOf(reshape.Input[1])!;
        SetInt64(graph.ConstantOf(concat.Input[2])!, 6);
        SetInt64(graph.ConstantOf(concat.Input[3])!, 64);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "disagree on the number of attention heads (12 and 6");
    }

    [TestMethod]
    public void TheEpsilonComesFromTheLayerNormAndMustAgree()
    {
        var model = original.Clone();
        var graph = new OnnxGraph(model.Graph);
        var scale = graph.ConsumersOf("encoder.layer.4.output.LayerNorm.weight").Single();
        var root = graph.ProducerOf(graph.ProducerOf(scale.Input[0])!.Input[1])!;
        var add = graph.ProducerOf(root.Input[0])!;
        var epsilon = add.Input.Select(graph.ConstantOf).Single(t => t is not null)!;
        epsilon.RawData = ByteString.CopyFrom(BitConverter.GetBytes(1e-5f));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "disagree on epsilon");
        StringAssert.Contains(e.Message, "encoder.layer.4.output.LayerNorm");
    }

    [TestMethod]
    public void AnUnknownActivationIsRefused()
    {
        var model = original.Clone();
        var graph = new OnnxGraph(model.Graph);
        var add = graph.ConsumersOf("encoder.layer.1.intermediate.dense.bias").Single(n => n.OpType == "Add");
        var erf = model.Graph.Node.Single(n => n.OpType == "Erf" && graph.ProducerOf(n.Input[0])!.Input[0] == add.Output[0]);
        erf.OpType = "Sigmoid";
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertConverter.Convert(model, 0, "minilm"));
        StringAssert.Contains(e.Message, "activation of layer 1");
    }

    private static void Rename(GraphProto graph, string from, string to)
    {
        graph.Initializer.Single(t => t.Name == from).Name = to;
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == from)
                {
                    node.Input[i] = to;
                }
            }
        }
    }

    private static void SetInt64(TensorProto tensor, long value)
    {
        tensor.Int64Data.Clear();
        tensor.RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));
    }

    private static void Dispose(OnnxBertConverter.Result result)
    {
        foreach (var tensor in result.Tensors.Values)
        {
            tensor.Dispose();
        }
    }
}
