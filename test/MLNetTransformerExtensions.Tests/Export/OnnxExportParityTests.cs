using System.Text.Json.Nodes;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Export;

/// <summary>
/// The exported ONNX graph computes what the TorchSharp model computes: logits within 1e-4 on the hf-tiny fixtures of
/// every family, for the fixture's right-padded batch and the same rows padded on the left; the int8 graph stays close.
/// </summary>
[TestClass]
public sealed class OnnxExportParityTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> Families => [["bert"], ["distilbert"], ["roberta"], ["gpt2"]];

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void OnnxRuntimeLogitsMatchTorchSharpOnBothPaddingSides(string family)
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", family));
        var (model, _) = OnnxClassifierWriter.Build(classifier.Model, quantize: false);
        using var session = new InferenceSession(model.ToByteArray());
        var batch = FixtureBatch.Read(family);

        var torch = TorchLogits(classifier.Model, batch);
        AssertClose(batch.ExpectedLogits, torch, $"{family}: TorchSharp vs HuggingFace (the fixture)");
        AssertClose(torch, OnnxLogits(session, classifier.Model.Config.Family, batch), $"{family}: ONNX Runtime, right padding");
        AssertClose(torch, OnnxLogits(session, classifier.Model.Config.Family, batch.PaddedLeft()), $"{family}: ONNX Runtime, left padding");
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void TheGraphHasDynamicAxesStandardOperatorsAndTheFamilysInputs(string family)
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", family));
        var (model, quantized) = OnnxClassifierWriter.Build(classifier.Model, quantize: false);
        Assert.AreEqual(0, quantized);
        var inputs = model.Graph.Input.Select(i => i.Name).ToArray();
        CollectionAssert.AreEqual(family == "bert" ? new[] { "input_ids", "attention_mask", "token_type_ids" } : ["input_ids", "attention_mask"], inputs);
        foreach (var input in model.Graph.Input)
        {
            CollectionAssert.AreEqual(new[] { "batch", "sequence" }, input.Type.TensorType.Shape.Dim.Select(d => d.DimParam).ToArray());
        }

        Assert.AreEqual("logits", model.Graph.Output.Single().Name);
        Assert.AreEqual(17L, model.OpsetImport.Single().Version);
        Assert.IsTrue(model.Graph.Node.All(n => n.Domain.Length == 0), "only standard-domain operators");
        var ops = model.Graph.Node.Select(n => n.OpType).ToHashSet();
        Assert.Contains("LayerNormalization", ops);
        Assert.AreEqual(family != "gpt2", ops.Contains("Erf"), "exact GELU goes through Erf; GPT-2's gelu_new through Tanh");
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void Int8GraphAgreesWithFloat32AndIsSmaller(string family)
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", family));
        var (fp32, _) = OnnxClassifierWriter.Build(classifier.Model, quantize: false);
        var (int8, quantizedLayers) = OnnxClassifierWriter.Build(classifier.Model, quantize: true);
        var config = classifier.Model.Config;
        // Every linear layer: packed q/k/v, attention output, two feed-forward per layer, plus the head's.
        Assert.IsGreaterThanOrEqualTo(4 * config.NumLayers + 1, quantizedLayers);
        Assert.IsTrue(int8.Graph.Node.Any(n => n.OpType == "DynamicQuantizeMatMul" && n.Domain == "com.microsoft"), "the int8 graph is written for ONNX Runtime");
        Assert.IsLessThan(fp32.CalculateSize(), int8.CalculateSize());

        var batch = FixtureBatch.Read(family);
        using var fp32Session = new InferenceSession(fp32.ToByteArray());
        using var int8Session = new InferenceSession(int8.ToByteArray());
        var reference = Probabilities(OnnxLogits(fp32Session, config.Family, batch), config.NumLabels);
        var quantized = Probabilities(OnnxLogits(int8Session, config.Family, batch), config.NumLabels);
        var largest = reference.Zip(quantized, (a, b) => Math.Abs(a - b)).Max();
        // Random tiny weights are the worst case for 8-bit codes (no outlier structure, 16–64 wide dot products).
        Assert.IsLessThan(0.05, largest, $"{family}: int8 probabilities moved by {largest:E2}");
        Assert.IsGreaterThan(0.0, largest, $"{family}: the int8 graph gave exactly the float32 probabilities");
    }

    [TestMethod]
    public void PerChannelCodesRoundTripWithinHalfAStep()
    {
        using var scope = NewDisposeScope();
        var weight = tensor(new float[] { 1f, -0.005f, 0.25f, 0.02f, -1f, 0f }, [3, 2]); // (in 3, out 2): column ranges 1 and 0.02
        var (codes, scales) = OnnxLayers.QuantizePerColumn(weight);
        CollectionAssert.AreEqual(new[] { 1f / 127, 0.02f / 127 }, scales);
        CollectionAssert.AreEqual(new sbyte[] { 127, -32, 32, 127, -127, 0 }, codes);
    }

    internal static float[] TorchLogits(SequenceClassificationModel model, FixtureBatch batch)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long[] shape = [batch.Rows, batch.Length];
        var types = model.Config.Family == ModelFamily.Bert ? tensor(batch.TokenTypeIds, shape) : null;
        return model.forward(tensor(batch.InputIds, shape), tensor(batch.AttentionMask, shape), types).data<float>().ToArray();
    }

    internal static float[] OnnxLogits(InferenceSession session, ModelFamily family, FixtureBatch batch)
    {
        long[] shape = [batch.Rows, batch.Length];
        var names = OnnxClassifierWriter.InputNames(family);
        var values = names.Select(n => OrtValue.CreateTensorValueFromMemory(n switch
        {
            "input_ids" => batch.InputIds,
            "attention_mask" => batch.AttentionMask,
            _ => batch.TokenTypeIds,
        }, shape)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, values, ["logits"]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var value in values)
            {
                value.Dispose();
            }
        }
    }

    private static double[] Probabilities(float[] logits, int classes) =>
        [.. logits.Chunk(classes).SelectMany(row =>
        {
            var max = row.Max();
            var exp = row.Select(x => Math.Exp(x - max)).ToArray();
            return exp.Select(e => e / exp.Sum());
        })];

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        var largest = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsLessThanOrEqualTo(Tolerance, largest, $"{what}: largest difference {largest:E2}");
    }
}

/// <summary>The fixture's padded batch (expected.json's <c>batch</c>): the exact ids, mask and token types HuggingFace ran, and its logits.</summary>
internal sealed record FixtureBatch(int Rows, int Length, long[] InputIds, long[] AttentionMask, long[] TokenTypeIds, float[] ExpectedLogits, long PadId)
{
    public static FixtureBatch Read(string family)
    {
        var json = JsonNode.Parse(File.ReadAllText(TestPaths.Fixtures("hf-tiny", family, "expected.json")))!["batch"]!;
        var ids = Matrix(json["input_ids"]!);
        var rows = ids.Length;
        var length = ids[0].Length;
        var types = json["token_type_ids"] is JsonArray t ? Matrix(t).SelectMany(r => r).ToArray() : new long[rows * length];
        var logits = json["logits"]!.AsArray().SelectMany(r => r!.AsArray().Select(v => v!.GetValue<float>())).ToArray();
        return new FixtureBatch(rows, length, [.. ids.SelectMany(r => r)], [.. Matrix(json["attention_mask"]!).SelectMany(r => r)], types, logits, json["pad_token_id"]!.GetValue<long>());
    }

    /// <summary>The same rows with their padding moved to the left.</summary>
    public FixtureBatch PaddedLeft()
    {
        var (ids, mask, types) = (new long[InputIds.Length], new long[InputIds.Length], new long[InputIds.Length]);
        Array.Fill(ids, PadId);
        for (var r = 0; r < Rows; r++)
        {
            var real = (int)AttentionMask.AsSpan(r * Length, Length).ToArray().Sum();
            var offset = Length - real;
            for (var i = 0; i < real; i++)
            {
                ids[(r * Length) + offset + i] = InputIds[(r * Length) + i];
                types[(r * Length) + offset + i] = TokenTypeIds[(r * Length) + i];
                mask[(r * Length) + offset + i] = 1;
            }
        }

        return this with { InputIds = ids, AttentionMask = mask, TokenTypeIds = types };
    }

    private static long[][] Matrix(JsonNode node) => [.. node.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray())];
}
