using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>
/// arctic-embed-xs: an opset-11 export whose head sizes are Constant nodes, not initializers, and with no pooler.
/// There is no independent reference for its outputs; the config and the loading report are checked.
/// </summary>
[TestClass]
public sealed class ArcticEmbedXsTests
{
    private const string Name = "builtin:arctic-embed-xs";

    [TestMethod]
    public void ConvertsWithoutAPoolerAndLoadsWithTheHeadsNew()
    {
        var info = BuiltinModels.Describe(Name);
        var roots = BuiltinModels.DefaultPackageRoots();
        if (!roots.Any(r => Directory.Exists(Path.Combine(r, info.PackageId.ToLowerInvariant(), info.PackageVersion))))
        {
            Assert.Inconclusive($"{info.PackageId} {info.PackageVersion} is not in the NuGet cache.");
        }

        var cache = TestPaths.NewTempDirectory();
        try
        {
            var folder = BuiltinModels.Resolve(Name, cache, roots);
            var config = TransformerConfig.FromFolder(folder);
            Assert.AreEqual((30522, 384, 6, 12, 1536, 512, 2, 1e-12, Activation.Gelu),
                (config.VocabSize, config.HiddenSize, config.NumLayers, config.NumHeads, config.IntermediateSize, config.MaxPositions, config.TypeVocabSize, config.LayerNormEps, config.HiddenAct));
            var header = SafeTensorsFile.ReadHeader(Path.Combine(folder, "model.safetensors"));
            Assert.AreEqual(101, header.Count);
            Assert.IsFalse(header.Keys.Any(k => k.StartsWith("pooler.", StringComparison.Ordinal)));
            StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "README.md")), "no pooler");

            using var model = TransformerModels.LoadForSequenceClassification(folder, out var report);
            CollectionAssert.AreEquivalent(
                new[] { "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias" }, report!.Missing.ToList(), report.ToString());
            Assert.AreEqual(0, report.Unexpected.Count, report.ToString());

            var encoded = TransformerTokenizer.FromFolder(folder).Encode("A man is playing a guitar.");
            CollectionAssert.AreEqual(new[] { 101, 1037, 2158, 2003, 2652, 1037, 2858, 1012, 102 }, encoded.InputIds);
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var ids = tensor(encoded.InputIds.Select(i => (long)i).ToArray(), [1, encoded.Length]);
            var hidden = model.HiddenStates(ids, ones_like(ids), zeros_like(ids));
            Assert.IsTrue(hidden.isfinite().all().item<bool>());
            Assert.IsTrue(hidden.std().item<float>() > 0.01f, "the hidden states are constant");
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }
}
