using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// <c>ApplySentenceEmbedding</c> as an ordinary ML.NET transform: schema → Fit → Transform (lazy, batched) → Save → Load
/// in a new MLContext → PredictionEngine, with the fixture's vectors at every step, and chained into ML.NET trainers.
/// </summary>
[TestClass]
public sealed class SentenceEmbeddingContractTests
{
    public sealed class TextRow
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    public sealed class Embedded
    {
        [VectorType(384)]
        public float[] Features { get; set; } = [];
    }

    private static readonly SentenceEncoderParityTests.Fixture s_fixture = SentenceEncoderParityTests.Read("embeddings-minilm");

    [TestMethod]
    public void TransformSaveLoadAndPredictionEngineGiveSentenceTransformersVectors()
    {
        var ml = new MLContext(seed: 1);
        var rows = s_fixture.Sentences.Select(s => new TextRow { Text = s.Text, Label = "x" }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var estimator = ml.Transforms.Text.ApplySentenceEmbedding("Features", "Text", batchSize: 6);

        var shape = estimator.GetOutputSchema(MLNetTransformerExtensions.MLNet.Internal.SchemaShapes.FromSchema(data.Schema));
        var declared = shape.Single(c => c.Name == "Features");
        Assert.AreEqual((SchemaShape.Column.VectorKind.Vector, (DataViewType)NumberDataViewType.Single), (declared.Kind, declared.ItemType));

        using var transformer = estimator.Fit(data);
        Assert.AreEqual((384, EmbeddingPooling.Mean, true, 256), (transformer.Dimension, transformer.Pooling, transformer.Normalize, transformer.MaximumLength));
        var transformed = transformer.Transform(data);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 384), transformed.Schema["Features"].Type);
        AssertMatchesFixture(transformed.GetColumn<float[]>("Features").ToList(), "Transform");
        CollectionAssert.AreEqual(rows.Select(r => r.Text).ToList(), transformed.GetColumn<string>("Text").ToList(), "pass-through columns keep their rows");

        var path = Path.Combine(TestPaths.NewTempDirectory(), "embedding.zip");
        try
        {
            ml.Model.Save(transformer, data.Schema, path);
            var other = new MLContext(seed: 2);
            var loaded = other.Model.Load(path, out var schema);
            try
            {
                Assert.IsInstanceOfType<SentenceEmbeddingTransformer>(loaded);
                AssertMatchesFixture(loaded.Transform(other.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Features").ToList(), "loaded model");
                var engine = other.Model.CreatePredictionEngine<TextRow, Embedded>(loaded, schema);
                AssertMatchesFixture([.. rows.Select(r => engine.Predict(r).Features)], "PredictionEngine");
            }
            finally
            {
                (loaded as IDisposable)?.Dispose();
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [TestMethod]
    public void ChainsIntoMulticlassTrainersAndClustering()
    {
        var ml = new MLContext(seed: 1);
        string[] sports = ["The striker scored twice in the final.", "The team won the championship game.", "A late goal decided the football match.", "The tennis player won in straight sets."];
        string[] money = ["Shares fell as the bank cut its forecast.", "The central bank raised interest rates.", "Stocks rallied after strong earnings.", "Investors sold bonds as inflation rose."];
        var rows = sports.Select(t => new TextRow { Text = t, Label = "sports" }).Concat(money.Select(t => new TextRow { Text = t, Label = "business" })).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);

        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.ApplySentenceEmbedding("Features", "Text"))
            .AppendCacheCheckpoint(ml)
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        var model = pipeline.Fit(data);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(new[]
        {
            new TextRow { Text = "The goalkeeper saved a penalty.", Label = "sports" },
            new TextRow { Text = "The company's profits doubled this quarter.", Label = "business" },
        })));
        Assert.AreEqual(1.0, metrics.MicroAccuracy, "two clearly separated topics");

        var clusters = ml.Transforms.Text.ApplySentenceEmbedding("Features", "Text")
            .AppendCacheCheckpoint(ml)
            .Append(ml.Clustering.Trainers.KMeans(numberOfClusters: 2))
            .Fit(data)
            .Transform(data)
            .GetColumn<uint>("PredictedLabel")
            .ToList();
        Assert.AreEqual(1, clusters.Take(4).Distinct().Count(), "the sports texts share a cluster");
        Assert.AreEqual(1, clusters.Skip(4).Distinct().Count(), "the business texts share a cluster");
        Assert.AreNotEqual(clusters[0], clusters[4]);
    }

    [TestMethod]
    public void OptionsAndSchemaErrorsNameTheProblem()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new TextRow { Text = "a" } });
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.ApplySentenceEmbedding("Features", "Body").Fit(data));
        StringAssert.Contains(missing.Message, "'Body'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.ApplySentenceEmbedding(new SentenceEmbeddingOptions { InputColumnName = "Text", BatchSize = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.ApplySentenceEmbedding(new SentenceEmbeddingOptions { InputColumnName = "Text", MaximumLength = 1 }));

        var numbers = ml.Data.LoadFromEnumerable(new[] { new Embedded { Features = new float[384] } });
        var wrongType = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.ApplySentenceEmbedding("Out", "Features").Fit(numbers));
        StringAssert.Contains(wrongType.Message, "String");
    }

    [TestMethod]
    public void BFloat16IsSavedWithTheModel()
    {
        var ml = new MLContext(seed: 1);
        var rows = s_fixture.Sentences.Take(3).Select(s => new TextRow { Text = s.Text }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var transformer = ml.Transforms.Text.ApplySentenceEmbedding(new SentenceEmbeddingOptions
        {
            InputColumnName = "Text",
            ModelPath = "builtin:arctic-embed-xs",
            InferencePrecision = InferencePrecision.BFloat16,
        }).Fit(data);
        var path = Path.Combine(TestPaths.NewTempDirectory(), "embedding.zip");
        try
        {
            ml.Model.Save(transformer, data.Schema, path);
            var loaded = (SentenceEmbeddingTransformer)new MLContext().Model.Load(path, out _);
            using (loaded)
            {
                Assert.AreEqual((InferencePrecision.BFloat16, EmbeddingPooling.Cls, 512), (loaded.InferencePrecision, loaded.Pooling, loaded.MaximumLength));
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    private static void AssertMatchesFixture(IReadOnlyList<float[]> vectors, string what)
    {
        Assert.HasCount(s_fixture.Sentences.Count, vectors);
        for (var i = 0; i < vectors.Count; i++)
        {
            var (cosine, maxDiff) = SentenceEncoderParityTests.Compare(vectors[i], s_fixture.Sentences[i].Embedding);
            Assert.IsTrue(cosine >= 0.99999 && maxDiff <= 1e-4, $"{what}, sentence {i}: cosine {cosine:R}, max |Δ| {maxDiff:E2}");
        }
    }
}
