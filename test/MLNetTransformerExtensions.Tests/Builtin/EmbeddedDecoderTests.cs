using System.Security.Cryptography;
using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>
/// builtin:gpt2-mini-gutenberg, the decoder this project pretrained and embeds in the library: it is written out of the
/// assembly's resources as a HuggingFace folder, is a trained language model, and a missing or altered resource is a
/// clear error that leaves nothing in the cache.
/// </summary>
[TestClass]
public sealed class EmbeddedDecoderTests
{
    private static readonly BuiltinModelInfo Decoder = BuiltinModels.Describe(BuiltinModels.DecoderName);

    private string work = string.Empty;

    [TestInitialize]
    public void CreateWorkFolder() => work = TestPaths.NewTempDirectory();

    [TestCleanup]
    public void RemoveWorkFolder() => Directory.Delete(work, recursive: true);

    private string Cache => Path.Combine(work, "cache");

    [TestMethod]
    public void ItIsDescribedAsEmbeddedWithItsLicenceAndNeedsNoPackage()
    {
        Assert.IsTrue(Decoder.IsEmbedded);
        Assert.AreEqual("MIT", Decoder.License);
        Assert.AreEqual(string.Empty, Decoder.PackageDownloadLine);
        CollectionAssert.Contains(BuiltinModels.Names.ToList(), BuiltinModels.DecoderName);
        Assert.IsFalse(BuiltinModels.Describe(BuiltinModels.DefaultName).IsEmbedded);
    }

    [TestMethod]
    public void ResolveWritesTheFolderOnceWithTheKnownBytes()
    {
        // No NuGet cache is given: the model needs nothing but this library.
        var folder = BuiltinModels.Resolve(BuiltinModels.DecoderName, Cache, []);
        StringAssert.StartsWith(folder, Path.Combine(Cache, "gpt2-mini-gutenberg") + Path.DirectorySeparatorChar);
        foreach (var (file, sha256) in Decoder.EmbeddedFiles)
        {
            var path = Path.Combine(folder, file);
            Assert.IsTrue(File.Exists(path), $"{file} is missing from {folder}");
            Assert.AreEqual(sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), file);
        }

        var written = File.GetLastWriteTimeUtc(Path.Combine(folder, "model.safetensors"));
        Assert.AreEqual(folder, BuiltinModels.Resolve(BuiltinModels.DecoderName, Cache, []));
        Assert.AreEqual(written, File.GetLastWriteTimeUtc(Path.Combine(folder, "model.safetensors")), "a complete folder was written again");
        Assert.AreEqual(0, Directory.GetDirectories(Path.GetDirectoryName(folder)!, ".partial-*").Length, "a partial folder was left behind");
        StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "README.md")), "Gutenberg");
    }

    [TestMethod]
    public void ItIsATrainedLanguageModel()
    {
        var folder = BuiltinModels.Resolve(BuiltinModels.DecoderName, Cache, []);
        var config = TransformerConfig.FromFolder(folder);
        Assert.AreEqual(ModelFamily.Gpt2, config.Family);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        using var model = TransformerModels.LoadForLanguageModeling(folder, out var report);
        Assert.IsTrue(report is null || report.IsComplete, $"the embedded checkpoint does not fill the model: {report}");
        model.eval();

        // Plain English the model never saw: a random model scores about ln(vocabulary) nats per token.
        string[] texts =
        [
            "The old man walked slowly along the road towards the village, where the lights were already burning.",
            "She said that she would write to her sister as soon as the letter arrived from London.",
        ];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rows = texts.Select(t => tokenizer.EncodeWithoutSpecialTokens(t).ToArray()).ToList();
        var batch = PackedBatch.Collate(rows, config.PadTokenId ?? 0);
        var (sum, count) = LanguageModelingLoss.CausalLanguageModeling(model, batch);
        var nats = sum.item<float>() / count;
        var uniform = Math.Log(config.VocabSize);
        Assert.IsLessThan(uniform * 0.7, nats, $"the shipped decoder scores {nats:F2} nats per token on English text; a random one scores {uniform:F2}");
    }

    [TestMethod]
    public void AMissingResourceIsAClearErrorAndLeavesNothing()
    {
        Stream? Open(string name) => name.EndsWith("/merges.txt", StringComparison.Ordinal) ? null : typeof(BuiltinModels).Assembly.GetManifestResourceStream(name);
        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DecoderName, Cache, [], Open));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceMissing, e.Kind);
        StringAssert.Contains(e.Message, "builtin/gpt2-mini-gutenberg/merges.txt");
        StringAssert.Contains(e.Message, "reinstall");
        AssertCacheEmpty();
    }

    [TestMethod]
    public void AnAlteredResourceIsReportedAsDamagedAndLeavesNothing()
    {
        Stream? Open(string name)
        {
            var stream = typeof(BuiltinModels).Assembly.GetManifestResourceStream(name);
            if (stream is null || !name.EndsWith("/model.safetensors", StringComparison.Ordinal))
            {
                return stream;
            }

            // One flipped bit in the middle of the weights: the file still parses, only the hash can tell.
            var copy = new MemoryStream();
            using (stream)
            {
                stream.CopyTo(copy);
            }

            copy.GetBuffer()[copy.Length / 2] ^= 0x10;
            copy.Position = 0;
            return copy;
        }

        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DecoderName, Cache, [], Open));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceDamaged, e.Kind);
        StringAssert.Contains(e.Message, "builtin/gpt2-mini-gutenberg/model.safetensors");
        StringAssert.Contains(e.Message, Decoder.EmbeddedFiles["model.safetensors"]);
        AssertCacheEmpty();
    }

    private void AssertCacheEmpty()
    {
        var left = Directory.Exists(Cache) ? Directory.GetFileSystemEntries(Cache, "*", SearchOption.AllDirectories) : [];
        Assert.IsFalse(left.Any(e => File.Exists(e) || Path.GetFileName(e).StartsWith(".partial-", StringComparison.Ordinal)),
            "the failed extraction left something in the cache: " + string.Join(", ", left));
    }
}
