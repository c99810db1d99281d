using System.Text.Json;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Modeling;

/// <summary>Logits and hidden states against HuggingFace's own outputs for the hf-tiny fixtures (token ids taken from the fixtures).</summary>
[TestClass]
public sealed class ModelParityTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> Families => [["bert"], ["distilbert"], ["roberta"], ["gpt2"]];

    internal static (SequenceClassificationModel Model, JsonElement Expected) Load(string family)
    {
        var folder = TestPaths.Fixtures("hf-tiny", family);
        var config = TransformerConfig.FromFolder(folder);
        var model = TransformerModels.CreateForSequenceClassification(config);
        var report = TransformerModels.LoadWeights(model, SafeTensorsFile.Read(Path.Combine(folder, "model.safetensors")), folder);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(0, report.Unexpected.Count, report.ToString());
        model.eval();
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")));
        return (model, json.RootElement.Clone());
    }

    internal static Tensor Ids(JsonElement rows) =>
        tensor(rows.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetInt64())).ToArray(),
            [rows.GetArrayLength(), rows[0].GetArrayLength()]);

    internal static Tensor Row(JsonElement row) => tensor(row.EnumerateArray().Select(v => v.GetInt64()).ToArray(), [1, row.GetArrayLength()]);

    internal static void AssertClose(JsonElement expected, Tensor actual, string what)
    {
        var flat = Flatten(expected).ToArray();
        var values = actual.contiguous().data<float>().ToArray();
        Assert.AreEqual(flat.Length, values.Length, $"{what}: element count");
        var worst = flat.Zip(values, (e, a) => Math.Abs(e - a)).Max();
        Assert.IsTrue(worst <= Tolerance, $"{what}: max |Δ| {worst:E2} > {Tolerance:E0}");
    }

    private static IEnumerable<double> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e.GetDouble()];

    private static Tensor? Types(JsonElement holder) =>
        holder.TryGetProperty("token_type_ids", out var types) ? (types[0].ValueKind == JsonValueKind.Array ? Ids(types) : Row(types)) : null;

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void SingleInputsMatchHuggingFace(string family)
    {
        var (model, expected) = Load(family);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            if (c.GetProperty("input_ids").GetArrayLength() == 0)
            {
                continue; // GPT-2's empty text: no tokens, not run through the model
            }

            var ids = Row(c.GetProperty("input_ids"));
            var mask = Row(c.GetProperty("attention_mask"));
            var types = Types(c);
            var id = c.GetProperty("id").GetInt32();
            AssertClose(c.GetProperty("logits_single"), model.forward(ids, mask, types), $"{family} case {id} logits");
            var hidden = model.HiddenStates(ids, mask, types);
            var rows = (int)Math.Min(4, hidden.shape[1]);
            AssertClose(c.GetProperty("last_hidden_state_0_4x4"), hidden[0, TensorIndex.Slice(0, rows), TensorIndex.Slice(0, 4)], $"{family} case {id} hidden");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void PaddedBatchesMatchHuggingFace(string family)
    {
        var (model, expected) = Load(family);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = expected.GetProperty("batch");
        AssertClose(batch.GetProperty("logits"), model.forward(Ids(batch.GetProperty("input_ids")), Ids(batch.GetProperty("attention_mask")), Types(batch)), $"{family} right-padded batch");

        var random = expected.GetProperty("random_batch");
        var randomIds = Ids(random.GetProperty("input_ids"));
        var randomMask = Ids(random.GetProperty("attention_mask"));
        AssertClose(random.GetProperty("logits"), model.forward(randomIds, randomMask, Types(random)), $"{family} random batch (every position row)");
        AssertClose(random.GetProperty("last_hidden_state_0_4x4"), model.HiddenStates(randomIds, randomMask, Types(random))[0, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 4)], $"{family} random batch hidden");

        if (expected.TryGetProperty("batch_left", out var left))
        {
            AssertClose(left.GetProperty("logits"), model.forward(Ids(left.GetProperty("input_ids")), Ids(left.GetProperty("attention_mask")), null), $"{family} left-padded batch");
            AssertClose(batch.GetProperty("logits"), model.forward(Ids(left.GetProperty("input_ids")), Ids(left.GetProperty("attention_mask")), null), $"{family} left == right padding");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Families))]
    public void EveryTensorOfTheCheckpointIsUsedWithItsShape(string family)
    {
        var (model, expected) = Load(family);
        var names = model.state_dict().Keys.ToHashSet();
        foreach (var tensorEntry in expected.GetProperty("tensors").EnumerateObject())
        {
            Assert.IsTrue(names.Contains(tensorEntry.Name), $"{family}: the model has no parameter '{tensorEntry.Name}'");
            var shape = tensorEntry.Value.EnumerateArray().Select(v => v.GetInt64()).ToArray();
            CollectionAssert.AreEqual(shape, model.state_dict()[tensorEntry.Name].shape, tensorEntry.Name);
        }
    }
}
