using MLNetTransformerExtensions.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Modeling;

/// <summary>Pooling ignores padding on either side, and a sentence-transformers folder's files are read (or refused) precisely.</summary>
[TestClass]
public sealed class SentencePoolingTests
{
    [TestMethod]
    [DataRow(EmbeddingPooling.Mean)]
    [DataRow(EmbeddingPooling.Cls)]
    [DataRow(EmbeddingPooling.LastToken)]
    public void PaddingOnEitherSideDoesNotChangeTheVector(EmbeddingPooling pooling)
    {
        MLNetTransformerExtensions.Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var real = randn(1, 3, 4);                                        // (1, T=3, H=4)
        var pad = randn(1, 2, 4);                                         // two padding positions
        var alone = SentencePooling.Pool(real, ones(1, 3, dtype: ScalarType.Int64), pooling, normalize: false);
        var right = SentencePooling.Pool(cat([real, pad], 1), tensor(new long[] { 1, 1, 1, 0, 0 }).view(1, 5), pooling, normalize: false);
        var left = SentencePooling.Pool(cat([pad, real], 1), tensor(new long[] { 0, 0, 1, 1, 1 }).view(1, 5), pooling, normalize: false);

        Assert.IsTrue(alone.allclose(right, atol: 1e-6), $"{pooling}, right padding");
        Assert.IsTrue(alone.allclose(left, atol: 1e-6), $"{pooling}, left padding");
        var expected = pooling switch
        {
            EmbeddingPooling.Mean => real.mean(new long[] { 1 }),
            EmbeddingPooling.Cls => real.select(1, 0),
            _ => real.select(1, 2),
        };
        Assert.IsTrue(alone.allclose(expected, atol: 1e-6));
        var normalized = SentencePooling.Pool(real, ones(1, 3, dtype: ScalarType.Int64), pooling, normalize: true);
        Assert.AreEqual(1.0, normalized.norm().item<float>(), 1e-5);
    }

    [TestMethod]
    public void ASentenceTransformersFolderStatesItsPoolingNormalisationAndLength()
    {
        var folder = TestPaths.NewTempDirectory();
        try
        {
            Assert.AreEqual(SentenceEmbeddingSettings.None, SentenceEmbeddingSettings.FromFolder(folder), "a plain HuggingFace folder states nothing");

            SentenceEmbeddingSettings.Write(folder, EmbeddingPooling.Cls, normalize: true, maxLength: 128, hiddenSize: 8);
            Assert.AreEqual(new SentenceEmbeddingSettings(EmbeddingPooling.Cls, true, 128), SentenceEmbeddingSettings.FromFolder(folder));

            // The Pooling module may live in another folder, named by modules.json; no Normalize module means none.
            File.WriteAllText(Path.Combine(folder, "modules.json"),
                """[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"pool","type":"sentence_transformers.models.Pooling"}]""");
            Directory.CreateDirectory(Path.Combine(folder, "pool"));
            File.WriteAllText(Path.Combine(folder, "pool", "config.json"), """{"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": false}""");
            Assert.AreEqual(new SentenceEmbeddingSettings(EmbeddingPooling.Mean, false, 128), SentenceEmbeddingSettings.FromFolder(folder));

            File.WriteAllText(Path.Combine(folder, "pool", "config.json"), """{"pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": true}""");
            var twoModes = Assert.ThrowsExactly<InvalidDataException>(() => SentenceEmbeddingSettings.FromFolder(folder));
            StringAssert.Contains(twoModes.Message, "pooling_mode_max_tokens");
            StringAssert.Contains(twoModes.Message, Path.Combine("pool", "config.json"));

            File.WriteAllText(Path.Combine(folder, "sentence_bert_config.json"), """{"max_seq_length": "long"}""");
            File.WriteAllText(Path.Combine(folder, "pool", "config.json"), """{"pooling_mode_lasttoken": true}""");
            StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => SentenceEmbeddingSettings.FromFolder(folder)).Message, "max_seq_length");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
