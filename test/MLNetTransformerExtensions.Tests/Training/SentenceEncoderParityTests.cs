using System.Text.Json;
using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// The built-in sentence encoders against sentence-transformers' own vectors (Fixtures/embeddings-*/README.md): token ids
/// exact, and per sentence cosine ≥ 0.99999 and max |Δ| ≤ 1e-4, whatever the batch composition and padding.
/// </summary>
[TestClass]
public sealed class SentenceEncoderParityTests
{
    private const double CosineMin = 0.99999;
    private const double MaxAbsDiff = 1e-4;

    public sealed record Sentence(int Id, string Text, int[] InputIds, float[] Embedding);

    public sealed record Fixture(IReadOnlyList<Sentence> Sentences, float[][] CosineMatrix, string Pooling, int MaxSeqLength);

    public static Fixture Read(string name)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures(name, "expected.json")));
        var root = document.RootElement;
        var sentences = root.GetProperty("sentences").EnumerateArray().Select(s => new Sentence(
            s.GetProperty("id").GetInt32(),
            s.GetProperty("text").GetString()!,
            [.. s.GetProperty("input_ids").EnumerateArray().Select(i => i.GetInt32())],
            [.. s.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())])).ToList();
        var matrix = root.GetProperty("cosine_matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        return new Fixture(sentences, matrix, root.GetProperty("pooling").GetString()!, root.GetProperty("max_seq_length").GetInt32());
    }

    [TestMethod]
    [DataRow("builtin:all-MiniLM-L6-v2", "embeddings-minilm", EmbeddingPooling.Mean)]
    [DataRow("builtin:arctic-embed-xs", "embeddings-arctic-xs", EmbeddingPooling.Cls)]
    public void MatchesSentenceTransformersInPaddedBatches(string model, string fixtureName, EmbeddingPooling pooling)
    {
        var fixture = Read(fixtureName);
        using var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve(model));

        Assert.AreEqual((pooling, true, fixture.MaxSeqLength), (encoder.Pooling, encoder.Normalize, encoder.MaxLength), "the defaults come from the model's sentence-transformers files");
        foreach (var sentence in fixture.Sentences)
        {
            CollectionAssert.AreEqual(sentence.InputIds, encoder.Encode(sentence.Text).InputIds, $"sentence {sentence.Id}");
        }

        var texts = fixture.Sentences.Select(s => s.Text).ToList();
        // All in one padded pass; passes cut by length; odd batches; and one at a time.
        foreach (var batchSize in new[] { texts.Count, 7, 3, 1 })
        {
            var vectors = encoder.Embed(texts, batchSize);
            for (var i = 0; i < texts.Count; i++)
            {
                var expected = fixture.Sentences[i].Embedding;
                var (cosine, maxDiff) = Compare(vectors[i], expected);
                Assert.IsTrue(cosine >= CosineMin && maxDiff <= MaxAbsDiff,
                    $"sentence {i} ('{texts[i]}'), batch size {batchSize}: cosine {cosine:R}, max |Δ| {maxDiff:E2}");
            }

            if (batchSize == texts.Count)
            {
                for (var a = 0; a < texts.Count; a++)
                {
                    for (var b = 0; b < texts.Count; b++)
                    {
                        var dot = vectors[a].Zip(vectors[b], (x, y) => (double)x * y).Sum();
                        Assert.AreEqual(fixture.CosineMatrix[a][b], dot, MaxAbsDiff, $"cosine of sentences {a} and {b}");
                    }
                }
            }
        }
    }

    [TestMethod]
    public void BFloat16StaysCloseAndLeavesTheFloat32VectorsAlone()
    {
        var fixture = Read("embeddings-minilm");
        using var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve(BuiltinModels.DefaultName));
        var texts = fixture.Sentences.Select(s => s.Text).ToList();

        encoder.InferencePrecision = InferencePrecision.BFloat16;
        var low = encoder.Embed(texts);
        encoder.InferencePrecision = InferencePrecision.Float32;
        var full = encoder.Embed(texts);

        for (var i = 0; i < texts.Count; i++)
        {
            Assert.IsTrue(Compare(low[i], fixture.Sentences[i].Embedding).Cosine > 0.99, $"bfloat16 sentence {i}");
            Assert.IsTrue(Compare(full[i], fixture.Sentences[i].Embedding).Cosine >= CosineMin, $"float32 sentence {i} after bfloat16");
        }

        Assert.IsFalse(encoder.HasInferenceCopy, "choosing float32 frees the bfloat16 copy");
    }

    [TestMethod]
    public void SettingsOverrideTheModelsAndEmbeddingLeaksNoTensor()
    {
        var fixture = Read("embeddings-minilm");
        using var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve(BuiltinModels.DefaultName), EmbeddingPooling.Cls, normalize: false, maxLength: 8);
        var texts = fixture.Sentences.Select(s => s.Text).ToList();

        encoder.Embed(texts, 4); // warm-up: libtorch's first calls allocate caches
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var vectors = encoder.Embed(texts, 4);
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "every batch's tensors are freed");

        Assert.IsTrue(texts.All(t => encoder.Encode(t).InputIds.Length <= 8));
        Assert.IsTrue(vectors.Any(v => Math.Abs(Math.Sqrt(v.Sum(x => (double)x * x)) - 1) > 0.01), "unnormalised vectors keep their length");
        Assert.IsTrue(Compare(vectors[0], fixture.Sentences[0].Embedding).Cosine < 0.999, "CLS pooling differs from the model's mean pooling");
    }

    [TestMethod]
    public void SavedFolderLoadsWithTheSameSettingsAndVectors()
    {
        var folder = TestPaths.NewTempDirectory();
        try
        {
            var texts = new[] { "A man is playing a guitar.", "I hated every minute of it." };
            float[][] before;
            using (var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve("builtin:arctic-embed-xs"), maxLength: 64))
            {
                before = encoder.Embed(texts);
                encoder.Save(folder);
            }

            Assert.IsTrue(File.Exists(Path.Combine(folder, "modules.json")));
            Assert.IsFalse(MLNetTransformerExtensions.Checkpoints.SafeTensorsFile.ReadHeader(Path.Combine(folder, "model.safetensors")).Keys.Any(k => k.StartsWith("classifier", StringComparison.Ordinal) || k.StartsWith("bert.", StringComparison.Ordinal)),
                "the folder holds the bare base model, as sentence-transformers saves it");
            using var loaded = SentenceEncoder.FromFolder(folder);
            Assert.AreEqual((EmbeddingPooling.Cls, true, 64), (loaded.Pooling, loaded.Normalize, loaded.MaxLength));
            var after = loaded.Embed(texts);
            for (var i = 0; i < texts.Length; i++)
            {
                CollectionAssert.AreEqual(before[i], after[i]);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    internal static (double Cosine, double MaxDiff) Compare(float[] actual, float[] expected)
    {
        Assert.HasCount(expected.Length, actual);
        double dot = 0, a2 = 0, e2 = 0, maxDiff = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            dot += (double)actual[i] * expected[i];
            a2 += (double)actual[i] * actual[i];
            e2 += (double)expected[i] * expected[i];
            maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - expected[i]));
        }

        return (dot / Math.Sqrt(a2 * e2), maxDiff);
    }
}
